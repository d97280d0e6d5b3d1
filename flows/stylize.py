"""Prefect flow: give an archive a period look, an era preset's print or a real old photo's look (the retro
model reading a reference). The restore-archive flow's plan and run tasks (same retries, same resume);
artifacts as restore-archive publishes them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from flows.restore import plan_run_publish
from model.checkpoints import DEFAULT_RETRO_CHECKPOINT
from pipeline.batch.config import PipelineConfig
from pipeline.batch.run import RestoreJob
from pipeline.batch.stylizer import ERA_SCHEME
from pipeline.storage import StorageOptions


@flow(name="stylize-archive", log_prints=True)
def stylize_archive_flow(
    manifest: str,
    output: str,
    era: str | None = None,
    reference: str | None = None,
    model: str | None = None,
    ray_address: str | None = None,
    batch_size: int = PipelineConfig.batch_size,
    limit: int | None = None,
    max_pixels: int = 200_000_000,
    output_format: str = "same",
    endpoint_url: str | None = None,
    ray_job_server: str | None = None,
) -> dict[str, Any]:
    """Give every image of MANIFEST not yet done under OUTPUT the look of ERA (``patina retro eras``) or of
    the old photo REFERENCE (read by the retro MODEL, default the shipped one); re-running resumes. Ray and
    Ray Job options as for restore-archive."""
    if (era is None) == (reference is None):
        raise ValueError("give exactly one of era or reference")
    if era is not None and model is not None:
        raise ValueError("model is the retro checkpoint for a reference; an era needs none")
    job = RestoreJob(
        manifest=manifest,
        output=output,
        model=f"{ERA_SCHEME}{era}" if era is not None else (model or str(DEFAULT_RETRO_CHECKPOINT)),
        reference=reference,
        pipeline=PipelineConfig(batch_size=batch_size, max_pixels=max_pixels, output_format=output_format),
        storage=StorageOptions(endpoint_url=endpoint_url),
        ray_address=ray_address,
        limit=limit,
    )
    # A bad era name fails the plan task, once, before any work.
    look = era if era is not None else f"the look of {reference}"
    summary = plan_run_publish(job, ray_job_server, "stylize", "rendered", f"Before and {look}")
    return asdict(summary)
