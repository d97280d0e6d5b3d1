"""Prefect flow: render an archive as period prints of one era. The restore-archive flow's plan and run tasks
(same retries, same resume), with the era preset as the model; artifacts as restore-archive publishes them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from flows.restore import plan_run_publish
from pipeline.batch.config import PipelineConfig
from pipeline.batch.run import RestoreJob
from pipeline.batch.stylizer import ERA_SCHEME
from pipeline.storage import StorageOptions


@flow(name="stylize-archive", log_prints=True)
def stylize_archive_flow(
    manifest: str,
    output: str,
    era: str,
    ray_address: str | None = None,
    batch_size: int = PipelineConfig.batch_size,
    limit: int | None = None,
    max_pixels: int = 200_000_000,
    output_format: str = "same",
    endpoint_url: str | None = None,
    ray_job_server: str | None = None,
) -> dict[str, Any]:
    """Render every image of MANIFEST not yet rendered under OUTPUT as an ERA print (``patina retro eras``);
    re-running resumes. Ray and Ray Job options as for restore-archive."""
    job = RestoreJob(
        manifest=manifest,
        output=output,
        model=f"{ERA_SCHEME}{era}",
        pipeline=PipelineConfig(batch_size=batch_size, max_pixels=max_pixels, output_format=output_format),
        storage=StorageOptions(endpoint_url=endpoint_url),
        ray_address=ray_address,
        limit=limit,
    )
    # A bad era name fails the plan task, once, before any work.
    summary = plan_run_publish(job, ray_job_server, "stylize", "rendered", f"Before and {era}")
    return asdict(summary)
