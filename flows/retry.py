"""When a Prefect task may retry: failures of the machinery (Ray, the network, an S3 outage that outlived the
storage layer's own retries), never errors in what the user asked for (a bad manifest, a missing model), which
would only fail again after a delay."""

from __future__ import annotations

import ray.exceptions

from pipeline.storage import StorageError


def infrastructure_error(task, task_run, state) -> bool:
    """Prefect ``retry_condition_fn``."""
    try:
        state.result()
    except Exception as exc:
        return is_infrastructure_error(exc)
    return False


def is_infrastructure_error(exc: BaseException | None) -> bool:
    while exc is not None:  # a ManifestError raised while reading is caused by the StorageError inside it
        if isinstance(exc, ray.exceptions.RayError | ConnectionError | TimeoutError):
            return True
        if isinstance(exc, StorageError) and exc.transient:
            return True
        exc = exc.__cause__ or exc.__context__
    return False
