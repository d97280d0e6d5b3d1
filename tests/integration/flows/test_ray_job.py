"""restore-archive with ray_job_server: the run is submitted as a real Ray Job to a local cluster's job server
and watched from the flow; artifacts and results as for an in-process run."""

from __future__ import annotations

import dataclasses
import os
import socket
import sys

import pytest
from ray.cluster_utils import Cluster

from flows.restore import restore_archive_flow
from pipeline.batch.config import PipelineConfig, RestoreJob
from pipeline.batch.remote import restore_command
from pipeline.storage import StorageOptions

pytestmark = pytest.mark.usefixtures("no_ray", "prefect_server")  # a cluster of its own, not the shared Ray


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def job_server(s3_server):
    """A Ray cluster (head node with dashboard and job server) that this process does not join: the flow
    only talks to its job server over HTTP, as with a remote cluster."""
    # The job's driver runs `patina` from PATH on the head node: this venv's, as on a cluster's image.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PATH", f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
        cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 2,
                "include_dashboard": True,
                "dashboard_port": free_port(),
                # Another Ray on this machine may hold the default agent port.
                "dashboard_agent_listen_port": free_port(),
            },
        )
        try:
            yield f"http://{cluster.head_node.address_info['webui_url']}"
        finally:
            cluster.shutdown()


def test_restore_as_a_ray_job(s3_server, job_server, photo, tiny_checkpoint, artifacts):
    # The cluster reads the model from S3, like the scans.
    archive = s3_server.scan_archive(photo, 4, tiny_checkpoint, missing=True)
    bucket, manifest, model = archive.bucket, archive.manifest, archive.model

    state = restore_archive_flow(
        manifest,
        f"s3://{bucket}/restored",
        model=model,
        endpoint_url=s3_server.endpoint_url,
        ray_job_server=job_server,
        return_state=True,
    )
    summary = state.result()
    assert (summary["ok"], summary["failed"], summary["total"]) == (4, 1, 5)
    assert summary["failures_by_reason"] == {"not found": 1}
    found = artifacts(state.state_details.flow_run_id)
    assert found["restore-progress"].data == 100.0
    assert found["restore-report"].data.count("data:image/jpeg;base64,") == 8
    from ray.job_submission import JobSubmissionClient

    (job,) = JobSubmissionClient(job_server).list_jobs()
    assert job.status == "SUCCEEDED" and '"ray_address": "auto"' in job.entrypoint


def test_restore_command_round_trips_every_option():
    # The job travels whole: every field, nested configs included, comes back equal on the cluster side
    # (which joins the cluster it runs on), and the real CLI accepts it.
    job = RestoreJob(
        manifest="s3://b/m.parquet",
        output="s3://b/out",
        model="s3://b/m.safetensors",
        pipeline=PipelineConfig(
            tile=256, overlap=16, tiles_per_batch=3, batch_size=5, block_bytes=7, output_format="png"
        ),
        storage=StorageOptions(
            endpoint_url="http://minio:9000", region="eu-1", max_attempts=3, outage_patience_s=9
        ),
        limit=5,
        flush_rows=11,
        flush_seconds=2.5,
    )
    argv = restore_command(job)
    assert argv[:3] == ["patina", "restore", "--job"]
    assert RestoreJob.from_json(argv[3]) == dataclasses.replace(job, ray_address="auto")
    with pytest.raises(ValueError, match="not a restore job"):
        RestoreJob.from_json('{"manifest": "m", "output": "o", "tiles": 3}')
    assert RestoreJob.from_json('{"manifest": "m", "output": "o", "pipeline": null}') == RestoreJob("m", "o")
    from typer.testing import CliRunner

    from flows.cli import app

    # --help after all options: the real CLI parses the command we generate (and exits before running).
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output
    both = CliRunner().invoke(app, [*argv[1:], "--output", "s3://b/x", "--limit", "3"])
    assert both.exit_code == 2 and "--job carries the whole job; drop --output, --limit" in both.output


def test_a_cut_connection_to_the_job_server_is_retried_and_the_run_completes(
    s3_server, job_server, photo, tiny_checkpoint, tcp_proxy, monkeypatch
):
    # An infrastructure error injected for real: the restore task's first connection to the Ray job server
    # is cut. The task runs a second time (retry delay zeroed for the test) and the job completes.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    import flows.restore

    monkeypatch.setattr(flows.restore, "restore", flows.restore.restore.with_options(retry_delay_seconds=0))
    archive = s3_server.scan_archive(photo, 3, tiny_checkpoint)
    proxy = tcp_proxy(int(job_server.rsplit(":", 1)[1]))
    proxy.refuse_next = 1

    state = restore_archive_flow(
        archive.manifest,
        f"s3://{archive.bucket}/restored",
        model=archive.model,
        endpoint_url=s3_server.endpoint_url,
        ray_job_server=proxy.endpoint_url,
        return_state=True,
    )

    assert state.result()["ok"] == 3
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert sorted((r.name.split("-")[0], r.run_count) for r in runs) == [("check", 1), ("restore", 2)]


def test_an_unfinished_job_for_the_same_output_is_watched_not_resubmitted(
    s3_server, job_server, photo, tiny_checkpoint
):
    # The flow run before this one crashed while its Ray Job ran on: a new run attaches to that job instead
    # of starting a second writer on the same prefix.
    import shlex

    from ray.job_submission import JobSubmissionClient

    from pipeline.batch.remote import submit_restore
    from pipeline.storage import StorageOptions

    archive = s3_server.scan_archive(photo, 2, tiny_checkpoint)
    job = RestoreJob(
        manifest=archive.manifest,
        output=f"s3://{archive.bucket}/restored",
        model=archive.model,
        storage=StorageOptions(endpoint_url=s3_server.endpoint_url),
    )
    client = JobSubmissionClient(job_server)
    earlier = client.submit_job(
        entrypoint="sleep 3 && " + shlex.join(restore_command(job)),  # still running when we look
        metadata={"patina": "restore", "output": job.output},
    )

    summary = submit_restore(job, job_server, poll_s=0.5)

    assert summary.ok == 2
    mine = [j for j in client.list_jobs() if (j.metadata or {}).get("output") == job.output]
    assert [j.submission_id for j in mine] == [earlier]  # watched, never resubmitted
