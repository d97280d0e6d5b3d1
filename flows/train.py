"""Prefect flow: train the GAN with Ray Train, score the exported model, promote it only if it is better.

Retries: ``train`` retries once, and the retry always resumes (Ray Train already restarts failed workers
from the last checkpoint; a flow-level retry covers a lost driver or cluster connection). ``evaluate and
promote`` is not retried: it writes to the registry, and a decision should be made once, in the open.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import task_run

from flows.retry import infrastructure_error
from pipeline.storage import Storage, StorageOptions
from pipeline.training.driver import train_gan
from pipeline.training.job import TrainJob, train_job
from pipeline.training.registry import Decision, decide


@task(retries=1, retry_delay_seconds=30, retry_condition_fn=infrastructure_error, cache_policy=NO_CACHE)
def train(job: TrainJob) -> dict[str, Any]:
    if task_run.run_count > 1:  # a retry continues the run the first attempt started
        job = dataclasses.replace(job, resume=True)
    return train_gan(job)


@task(cache_policy=NO_CACHE)
def evaluate_and_promote(
    candidate: str,
    registry: str,
    val: str,
    storage: StorageOptions,
    val_limit: int | None,
    val_max_side: int | None,
) -> Decision:
    return decide(candidate, registry, val, Storage(storage), limit=val_limit, max_side=val_max_side)


@flow(name="train-gan", log_prints=True)
def train_gan_flow(
    data: str,
    val: str,
    output: str,
    registry: str,
    preset: str = "small",
    steps: int | None = None,
    time_budget: str | None = None,
    batch_size: int | None = None,
    crop: int | None = None,
    checkpoint_every: int | None = None,
    mixture: str | None = None,
    real: str | None = None,
    real_fraction: float | None = None,
    workers: int = TrainJob.workers,
    gpu: bool = TrainJob.gpu,
    resume: bool = False,
    init: str | None = None,
    ray_address: str | None = None,
    val_limit: int | None = None,
    val_max_side: int | None = 1024,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """Train into OUTPUT (a run directory), then score OUTPUT/model.safetensors and the registry's current
    model on the same fixed degraded copy of VAL (a folder on every node, or s3://; photos centre-cropped to
    ``val_max_side`` so scoring stays bounded); the candidate replaces REGISTRY/latest only if better. The
    registry scores restoration models: retro runs train with `patina train --family retro`."""
    logger = get_run_logger()
    job = train_job(
        data,
        val,
        output,
        preset=preset,
        time_budget=time_budget,
        mixture=mixture,
        real_fraction=real_fraction,
        endpoint_url=endpoint_url,
        real=real,
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        checkpoint_every=checkpoint_every,
        workers=workers,
        gpu=gpu,
        resume=resume,
        init=init,
        ray_address=ray_address,
    )
    storage = job.storage
    metrics = train(job)
    logger.info("training finished at step %s", metrics.get("step"))
    candidate = Storage(storage).join(output, "model.safetensors")
    decision = evaluate_and_promote(candidate, registry, val, storage, val_limit, val_max_side)
    _publish(decision, candidate, val)
    logger.info("%s: %s", "promoted" if decision.promoted else "not promoted", decision.reason)
    return {"train": metrics, "decision": {k: v for k, v in asdict(decision).items() if k != "scores"}}


def _publish(decision: Decision, candidate: str, val: str) -> None:
    rows = [
        {"severity": severity, "method": method, "psnr_db": round(s.psnr, 3), "ssim": round(s.ssim, 4)}
        for method, by_severity in decision.scores.items()
        for severity, s in by_severity.items()
    ]
    create_table_artifact(rows, key="train-validation", description=f"{candidate} on {val}")
    verdict = "Promoted" if decision.promoted else "Not promoted"
    create_markdown_artifact(
        f"# {verdict}: `{decision.candidate_id}`\n\n{decision.reason}.\n\n"
        f"- candidate: `{candidate}`\n- current before this run: `{decision.current_id}`\n"
        f"- registry copy: `{decision.model_uri}`\n",
        key="train-promotion",
        description=verdict,
    )
