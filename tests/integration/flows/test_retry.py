"""Which failures a flow task retries: infrastructure yes, user errors no."""

from __future__ import annotations

import pytest
import ray.exceptions
import requests.exceptions
from ray.train import WorkerGroupError

from flows.retry import is_infrastructure_error
from model.checkpoints import CheckpointError
from pipeline.batch.remote import RayJobFailed
from pipeline.manifest import ManifestError
from pipeline.storage import StorageError


def _raised_while_handling(outer: Exception, inner: Exception) -> Exception:
    try:
        try:
            raise inner
        except Exception:
            raise outer from None
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "retry"),
    [
        (StorageError("s3://b/k: transient S3 error 503 persisted after 3 attempts", transient=True), True),
        (StorageError("s3://b/k: not found; check the key or prefix"), False),
        (
            _raised_while_handling(
                ManifestError("cannot read manifest"), StorageError("s3://b/m: transient", transient=True)
            ),
            True,
        ),
        (
            _raised_while_handling(
                ManifestError("cannot read manifest"), StorageError("s3://b/m: not found")
            ),
            False,
        ),
        (ManifestError("manifest has no 'uri' column"), False),
        (CheckpointError("m.safetensors: checkpoint is truncated"), False),
        (ValueError("cannot read time budget 'soon'; write it like 90s, 100m or 2h"), False),
        (ray.exceptions.RaySystemError("raylet died"), True),
        (requests.exceptions.ConnectionError("job server unreachable"), True),
        (RayJobFailed("Ray job raysubmit_1 ended FAILED"), True),
        (WorkerGroupError("lost", {0: ray.exceptions.ActorDiedError()}), True),
        (WorkerGroupError("raised", {0: ValueError("worker 0 of 1 got no training photos")}), False),
    ],
)
def test_retry_only_infrastructure(error, retry):
    assert is_infrastructure_error(error) is retry


def test_every_flow_task_that_may_retry_retries_only_infrastructure():
    # The restore task's retry runs end to end in test_ray_job.py; here the other tasks' settings, so that
    # removing a task's retries or its condition fails a test.
    import flows.manifest
    import flows.restore
    import flows.train
    from flows.retry import infrastructure_error

    expected = {
        flows.restore.check: 3,
        flows.restore.restore: 2,
        flows.train.train: 1,
        flows.manifest.list_archive: 3,
        flows.train.evaluate_and_promote: 0,  # promotion writes the registry: never run twice
    }
    for task, retries in expected.items():
        assert task.retries == retries, task.name
        if retries:
            assert task.retry_condition_fn is infrastructure_error, task.name
