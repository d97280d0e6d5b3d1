"""Prefect flow: restore an archive. Thin on purpose: check the job, run the pipeline library, publish.

Retries, only for infrastructure errors (Ray, network, an S3 outage that outlived the storage layer's own
retries); a user error (a bad manifest, a missing model, an output inside the input) fails at once. Why each
retry is safe:
- ``check`` (read the manifest and the model, check the output prefix): read-only; 3 retries.
- ``restore`` (the Ray job): 2 retries. Safe only because the pipeline resumes: it plans, skips every row
  already recorded ok, writes outputs atomically and never touches the originals.
Artifacts: a progress bar updated as rows complete, then a summary table and a before/after report.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from flows.report import summary_markdown, summary_table
from flows.retry import infrastructure_error
from pipeline.batch.config import PipelineConfig, RestoreJob, archive_job
from pipeline.batch.driver import restore_archive
from pipeline.batch.identity import identify_model
from pipeline.batch.outputs import check_output_prefix
from pipeline.batch.remote import submit_restore
from pipeline.batch.summary import RunProgress, RunSummary
from pipeline.manifest import read_manifest
from pipeline.storage import Storage, StorageOptions

PROGRESS_EVERY_S = 2.0  # at most one progress update per this many seconds: the UI polls, rows are fast


@task(
    retries=3,
    retry_delay_seconds=[5, 30, 120],
    retry_condition_fn=infrastructure_error,
    cache_policy=NO_CACHE,
)
def check(job: RestoreJob) -> str:
    """Fail a job the user must fix once, here, before any work: an unreadable manifest, an output prefix
    inside the input, a missing or broken model or reference. Found in a Ray Job, it would look like lost
    infrastructure and be retried. Returns the model id. The run itself plans what is left (once)."""
    storage = Storage(job.storage)
    check_output_prefix(read_manifest(job.manifest, storage)["uri"], job.output)
    return identify_model(job.model, storage, job.reference)[0]


@task(retries=2, retry_delay_seconds=60, retry_condition_fn=infrastructure_error, cache_policy=NO_CACHE)
def restore(job: RestoreJob, job_server: str | None = None, model_id: str | None = None) -> RunSummary:
    progress_id = create_progress_artifact(
        progress=0.0, key="restore-progress", description=f"Restoring {job.manifest} into {job.output}"
    )
    last = [0.0]

    def report(p: RunProgress) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY_S or p.processed == p.to_do:
            last[0] = now
            update_progress_artifact(progress_id, _percent(p.processed, p.to_do), description=_describe(p))

    if job_server:  # the checked model id: the watcher need not read the model again
        summary = submit_restore(job, job_server, report, model_id=model_id)
    else:
        summary = restore_archive(job, report)
    update_progress_artifact(
        progress_id, 100.0, description=f"{summary.ok} restored, {summary.failed} failed"
    )
    return summary


@flow(name="restore-archive", log_prints=True)
def restore_archive_flow(
    manifest: str,
    output: str,
    model: str | None = None,
    ray_address: str | None = None,
    batch_size: int = PipelineConfig.batch_size,
    tile: int = PipelineConfig.tile,
    overlap: int = PipelineConfig.overlap,
    tiles_per_batch: int = PipelineConfig.tiles_per_batch,
    limit: int | None = None,
    max_pixels: int = PipelineConfig.max_pixels,
    output_format: str = PipelineConfig.output_format,
    masks: bool = PipelineConfig.masks,
    fill: str = PipelineConfig.fill,
    tone: str = PipelineConfig.tone,
    tone_strength: float = PipelineConfig.tone_strength,
    endpoint_url: str | None = None,
    outage_patience: float = StorageOptions.outage_patience_s,
    flush_rows: int = RestoreJob.flush_rows,
    ray_job_server: str | None = None,
) -> dict[str, Any]:
    """Restore every image of MANIFEST not yet restored under OUTPUT (re-running resumes) and report.

    ``ray_address``: ``auto`` or ``ray://head:10001`` joins a cluster (and leaves it running); None starts
    Ray locally for this run. ``ray_job_server`` (http://head:8265) instead submits the run as a Ray Job
    that lives on the cluster, for long jobs; this flow then only watches it."""
    logger = get_run_logger()
    job = archive_job(
        manifest,
        output,
        model=model,
        endpoint_url=endpoint_url,
        outage_patience_s=outage_patience,
        batch_size=batch_size,
        tile=tile,
        overlap=overlap,
        tiles_per_batch=tiles_per_batch,
        max_pixels=max_pixels,
        output_format=output_format,
        masks=masks,
        fill=fill,
        tone=tone,
        tone_strength=tone_strength,
        ray_address=ray_address,
        limit=limit,
        flush_rows=flush_rows,
    )
    summary = plan_run_publish(job, ray_job_server, "restore", "restored", "Before and after")
    logger.info(
        "%d restored, %d failed, %d left; %.2f images/s",
        summary.ok,
        summary.failed,
        summary.skipped,
        summary.images_per_second,
    )
    return asdict(summary)


def plan_run_publish(job: RestoreJob, job_server: str | None, kind: str, done: str, after: str) -> RunSummary:
    """The body every archive flow shares: check (a user error fails here, once), run, then publish the
    ``<kind>-summary`` table and the ``<kind>-report`` before/``after`` page."""
    model_id = check(job)
    get_run_logger().info("model %s", model_id)
    summary = restore(job, job_server, model_id)
    get_run_logger().info(f"%d rows: %d already {done} before this run", summary.total, summary.already_done)
    create_table_artifact(
        summary_table(summary), key=f"{kind}-summary", description=f"{job.manifest} -> {job.output}"
    )
    create_markdown_artifact(
        summary_markdown(summary, Storage(job.storage)), key=f"{kind}-report", description=after
    )
    return summary


def _percent(processed: int, to_do: int) -> float:
    return 100.0 if to_do == 0 else round(100.0 * processed / to_do, 2)


def _describe(p: RunProgress) -> str:
    return (
        f"{p.processed:,} of {p.to_do:,} rows this run ({p.ok:,} ok, {p.failed:,} failed); "
        f"{p.already_done:,} of {p.total:,} were already done; {p.images_per_second:.2f} images/s"
    )
