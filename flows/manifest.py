"""Prefect flow: list an S3 prefix (or a folder) into a Parquet manifest for `restore-archive`.

The listing task retries: it only reads the bucket, and the manifest is written in one atomic put at the end,
so a retried attempt never leaves a half-written manifest behind.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from flows.retry import infrastructure_error
from pipeline.manifest import build_manifest
from pipeline.storage import Storage, StorageOptions


@task(
    retries=3,
    retry_delay_seconds=[10, 60, 300],
    retry_condition_fn=infrastructure_error,
    cache_policy=NO_CACHE,
)
def list_archive(source: str, out: str, storage: StorageOptions) -> int:
    return build_manifest(source, out, Storage(storage))


@flow(name="build-manifest", log_prints=True)
def build_manifest_flow(source: str, out: str, endpoint_url: str | None = None) -> dict[str, Any]:
    """Write OUT (a .parquet manifest, local or s3://) listing every image under SOURCE."""
    count = list_archive(source, out, StorageOptions(endpoint_url=endpoint_url))
    get_run_logger().info("%d images listed from %s into %s", count, source, out)
    create_markdown_artifact(
        f"# Manifest\n\n{count:,} images under `{source}`, written to `{out}`.\n",
        key="manifest",
        description=f"{count:,} images",
    )
    return {"source": source, "manifest": out, "images": count}
