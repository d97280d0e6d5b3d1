"""Prefect flow: give an archive a period look, an era preset's print or a real old photo's look (the retro
model reading a reference). The restore-archive flow's check and run tasks (same retries, same resume);
artifacts as restore-archive publishes them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import flow

from flows.restore import plan_run_publish
from pipeline.batch.config import PipelineConfig, RestoreJob, stylize_job
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
    max_pixels: int = PipelineConfig.max_pixels,
    output_format: str = PipelineConfig.output_format,
    endpoint_url: str | None = None,
    outage_patience: float = StorageOptions.outage_patience_s,
    flush_rows: int = RestoreJob.flush_rows,
    ray_job_server: str | None = None,
) -> dict[str, Any]:
    """Give every image of MANIFEST not yet done under OUTPUT the look of ERA (``patina retro eras``) or of
    the old photo REFERENCE (read by the retro MODEL, default the shipped one); re-running resumes. Ray and
    Ray Job options as for restore-archive."""
    job = stylize_job(
        manifest,
        output,
        model=model,
        era=era,
        reference=reference,
        endpoint_url=endpoint_url,
        outage_patience_s=outage_patience,
        batch_size=batch_size,
        max_pixels=max_pixels,
        output_format=output_format,
        ray_address=ray_address,
        limit=limit,
        flush_rows=flush_rows,
    )
    # A bad era name fails the check task, once, before any work.
    look = era if era is not None else f"the look of {reference}"
    summary = plan_run_publish(job, ray_job_server, "stylize", "rendered", f"Before and {look}")
    return asdict(summary)
