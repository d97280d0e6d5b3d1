"""When a Prefect task may retry: failures of the machinery (Ray, the network, an S3 outage that outlived the
storage layer's own retries, a Ray Job or training run lost with its nodes), never errors in what the user
asked for (a bad manifest, a missing model), which would only fail again after a delay. Every task retried
on this rule is safe to repeat because the work it drives resumes."""

from __future__ import annotations

import ray.exceptions
import requests.exceptions
from ray.train import ControllerError, WorkerGroupError

from pipeline.batch.remote import RayJobFailed
from pipeline.storage import StorageError

_MACHINERY = (
    ray.exceptions.RayError,
    ConnectionError,
    TimeoutError,
    requests.exceptions.ConnectionError,  # the Ray job server's client
    requests.exceptions.Timeout,
    ControllerError,  # Ray Train's controller failed: not the training code
    RayJobFailed,
)


def infrastructure_error(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``."""
    try:
        state.result()
    except Exception as exc:
        return is_infrastructure_error(exc)
    return False


def is_infrastructure_error(exc: BaseException | None) -> bool:
    while exc is not None:
        if isinstance(exc, _MACHINERY):
            return True
        if isinstance(exc, StorageError) and exc.transient:
            return True
        if isinstance(exc, WorkerGroupError):  # workers lost (node died, OOM-killed), not a raised error
            return all(isinstance(e, ray.exceptions.RayError) for e in exc.worker_failures.values())
        # A ManifestError raised while reading is caused by the StorageError inside it (even "from None").
        exc = exc.__cause__ or exc.__context__
    return False
