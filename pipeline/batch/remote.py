"""Run an archive job as a Ray Job: `patina restore --job JSON` submitted to the cluster's job server.

For long jobs: the job runs on the cluster (its driver on the head node), so it survives the flow's process,
a flow-run retry or a Prefect worker restart; a flow finding an unfinished job for the same output watches
that one instead of submitting another, and a resubmitted job resumes like any other run. The flow only
watches: progress comes from the results parts the job writes under the output prefix, and the summary from
its final results.parquet.
"""

from __future__ import annotations

import dataclasses
import io
import shlex
import time
from collections.abc import Callable

import pyarrow.compute as pc
import pyarrow.parquet as pq
import requests.exceptions
from ray.job_submission import JobStatus, JobSubmissionClient

from pipeline.batch.config import RestoreJob
from pipeline.batch.summary import RunProgress, RunSummary, summarize
from pipeline.manifest import RESULTS_FILE, plan_remaining, read_manifest, read_results, refuse_other_models
from pipeline.storage import Storage, StorageError

POLL_S = 5.0


class RayJobFailed(RuntimeError):
    """A submitted Ray Job ended FAILED or STOPPED: lost nodes, a preempted head, or an error in the run
    (its log tail is in the message). Resubmitting resumes, so flows retry it like other infrastructure."""


def restore_command(job: RestoreJob) -> list[str]:
    """The `patina restore` command line the cluster runs: the whole job as JSON (nothing re-defaulted on
    the way), joining the cluster it runs on."""
    return ["patina", "restore", "--job", dataclasses.replace(job, ray_address="auto").to_json()]


def submit_restore(
    job: RestoreJob,
    job_server: str,
    on_progress: Callable[[RunProgress], None] | None = None,
    poll_s: float = POLL_S,
    model_id: str | None = None,
) -> RunSummary:
    """Submit ``job`` to the Ray job server at ``job_server`` (http://head:8265), wait for it, summarise.
    ``model_id``: the job's model id when the caller has read it already (the flow's check task)."""
    storage = Storage(job.storage)
    manifest = read_manifest(job.manifest, storage)
    before = plan_remaining(manifest, job.output, storage)
    # Another model's outputs under this prefix would fail the job on the cluster, where a failed job looks
    # like lost infrastructure and is retried: refuse here, once. (Lazy: the model code is heavy, and the
    # flows import this module to know RayJobFailed.)
    if model_id is None:
        from pipeline.batch.identity import identify_model

        model_id = identify_model(job.model, storage, job.reference)[0]
    refuse_other_models(before, job.output, model_id)
    to_do = before.todo.num_rows if job.limit is None else min(job.limit, before.todo.num_rows)
    progress = RunProgress(total=before.total, already_done=before.done, to_do=to_do)
    client = JobSubmissionClient(job_server)
    rows_before = read_results(job.output, storage, columns=["status"]).num_rows
    # A job for this output still running (the flow run before this one crashed, or this is a retry): watch
    # it rather than start a second writer on the same prefix.
    job_id = _unfinished_job(client, job.output) or _submit(
        client, shlex.join(restore_command(job)), {"patina": "restore", "output": job.output}
    )
    while (status := _status(client, job_id)) not in _FINISHED:
        time.sleep(poll_s)
        if on_progress:  # the job's result parts so far (oldest first): the rows it has recorded
            try:
                new = read_results(job.output, storage, columns=["status"]).slice(rows_before)["status"]
            except StorageError:  # a progress read is not worth failing the watch over; the next may work
                continue
            progress.ok = int(pc.sum(pc.equal(new, "ok")).as_py() or 0)
            progress.failed = len(new) - progress.ok
            on_progress(progress)
    if status != JobStatus.SUCCEEDED:
        tail = " | ".join(client.get_job_logs(job_id).strip().splitlines()[-3:])
        raise RayJobFailed(f"Ray job {job_id} ended {status.value}: {tail}")
    results_uri = storage.join(job.output, RESULTS_FILE)
    results = pq.read_table(io.BytesIO(storage.read_bytes(results_uri)))
    progress.ok = int(pc.sum(pc.equal(results["status"], "ok")).as_py() or 0) - before.done
    progress.failed = int(pc.sum(pc.equal(results["status"], "failed")).as_py() or 0)
    if on_progress:
        on_progress(progress)
    return summarize(progress, results, results_uri)


_FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


def _unfinished_job(client: JobSubmissionClient, output: str) -> str | None:
    for details in client.list_jobs():
        meta = details.metadata or {}
        if (
            meta.get("patina") == "restore"
            and meta.get("output") == output
            and details.status not in _FINISHED
        ):
            return details.submission_id
    return None


def _status(client: JobSubmissionClient, job_id: str, attempts: int = 5) -> JobStatus:
    """The job's status, riding out a few failed polls (a head node restarting, a network blip)."""
    for attempt in range(attempts):
        try:
            return client.get_job_status(job_id)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, RuntimeError):
            if attempt == attempts - 1:
                raise
            time.sleep(2**attempt)
    raise AssertionError("unreachable")


def _submit(
    client: JobSubmissionClient, entrypoint: str, metadata: dict[str, str], wait_s: float = 120
) -> str:
    """Submit, waiting out a head node whose job agent is still starting (it answers 500 until then)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return client.submit_job(entrypoint=entrypoint, metadata=metadata)
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)
