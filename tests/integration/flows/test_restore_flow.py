"""The restore-archive flow on a real Prefect server, local Ray and moto's S3 server; artifacts read back."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

import flows.restore
from flows.manifest import build_manifest_flow
from flows.restore import restore_archive_flow

pytestmark = pytest.mark.usefixtures("prefect_server", "ray_local")


@pytest.fixture(scope="module")
def archive(s3_server, photo):
    """Eight good scans and two bad ones under s3://<bucket>/scans/, and the output prefix."""
    bucket = s3_server.create_bucket()
    client = s3_server.client()
    for i in range(8):
        buf = io.BytesIO()
        photo.resize((72, 56)).rotate(i * 11).save(buf, "JPEG", quality=90)
        client.put_object(Bucket=bucket, Key=f"scans/print{i:02d}.jpg", Body=buf.getvalue())
    client.put_object(Bucket=bucket, Key="scans/broken.jpg", Body=b"\xff\xd8\xff not a whole jpeg")
    client.put_object(Bucket=bucket, Key="scans/empty.png", Body=b"")
    return bucket


def test_build_manifest_then_restore_publishes_progress_summary_and_report(
    s3_server, archive, tiny_checkpoint, artifacts, monkeypatch
):
    endpoint = s3_server.endpoint_url
    manifest = f"s3://{archive}/manifests/scans.parquet"
    listed = build_manifest_flow(f"s3://{archive}/scans", manifest, endpoint_url=endpoint, return_state=True)
    assert listed.result()["images"] == 10
    assert "10 images" in artifacts(listed.state_details.flow_run_id)["manifest"].data

    output = f"s3://{archive}/restored"
    # Record every progress value the flow sends (the real update still goes to the server).
    sent: list[float] = []
    real_update = flows.restore.update_progress_artifact

    def update(artifact_id, progress, description=None):
        sent.append(progress)
        return real_update(artifact_id, progress, description=description)

    monkeypatch.setattr(flows.restore, "update_progress_artifact", update)
    monkeypatch.setattr(flows.restore, "PROGRESS_EVERY_S", 0.0)
    state = restore_archive_flow(
        manifest, output, model=str(tiny_checkpoint), endpoint_url=endpoint, batch_size=4, return_state=True
    )
    summary = state.result()
    assert (summary["ok"], summary["failed"], summary["total"]) == (8, 2, 10)
    found = artifacts(state.state_details.flow_run_id)
    assert found["restore-progress"].type == "progress" and found["restore-progress"].data == 100.0
    assert any(0 < p < 100 for p in sent) and sent == sorted(sent)  # it moved as rows completed
    table = {row["metric"]: row["value"] for row in _table(found["restore-summary"])}
    assert table["restored (this run)"] == 8 and table["failed (this run)"] == 2
    assert table["rows in manifest"] == 10 and table["images/s"] > 0
    assert sum(v for k, v in table.items() if k.startswith("failed: ")) == 2
    report = found["restore-report"].data
    assert report.count("data:image/jpeg;base64,") == 8  # 4 before/after pairs
    assert "broken.jpg" in report and "empty.png" in report and "Failed rows (2)" in report
    # The flow used the Ray it was given and left it running.
    assert ray.is_initialized()
    results = pq.read_table(io.BytesIO(s3_server.storage().read_bytes(f"{output}/results.parquet")))
    assert results.num_rows == 10

    # A second run resumes: nothing left but the two bad rows, which fail again; progress still ends at 100.
    again = restore_archive_flow(
        manifest, output, model=str(tiny_checkpoint), endpoint_url=endpoint, return_state=True
    )
    assert (again.result()["already_done"], again.result()["ok"], again.result()["failed"]) == (8, 0, 2)
    assert artifacts(again.state_details.flow_run_id)["restore-progress"].data == 100.0


def test_bad_manifest_fails_the_flow_with_one_line_and_no_retry(
    s3_server, archive, tmp_path, tiny_checkpoint
):
    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"path": ["x.jpg"]}), manifest)
    state = restore_archive_flow(
        str(manifest), str(tmp_path / "out"), model=str(tiny_checkpoint), return_state=True
    )
    assert state.is_failed()
    with pytest.raises(ValueError, match="uri"):
        state.result()
    # A user error: the check task ran once, no retries (they would only fail again, minutes later).
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert [(r.name.split("-")[0], r.run_count) for r in runs] == [("check", 1)]


def _table(artifact) -> list[dict]:
    import json

    return json.loads(artifact.data)


def test_a_missing_model_fails_the_check_once_and_nothing_runs(s3_server, archive, tmp_path):
    # A user error found by the check (read-only, before any work): one check run, no restore task, no retry.
    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"uri": [f"s3://{archive}/scans/print00.jpg"]}), manifest)
    state = restore_archive_flow(
        str(manifest),
        str(tmp_path / "out"),
        model=str(tmp_path / "no-such-model.safetensors"),
        endpoint_url=s3_server.endpoint_url,
        return_state=True,
    )
    assert state.is_failed()
    with pytest.raises(Exception, match=r"no-such-model\.safetensors: not found"):
        state.result()
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert [(r.name.split("-")[0], r.run_count) for r in runs] == [("check", 1)]


def test_stylize_archive_renders_period_prints_and_resumes(
    s3_server, archive, artifacts, tiny_retro_checkpoint
):
    from flows.stylize import stylize_archive_flow

    endpoint = s3_server.endpoint_url
    manifest = f"s3://{archive}/manifests/scans.parquet"
    build_manifest_flow(f"s3://{archive}/scans", manifest, endpoint_url=endpoint)
    output = f"s3://{archive}/retro-1900s"
    state = stylize_archive_flow(
        manifest, output, era="1900s-sepia", endpoint_url=endpoint, return_state=True
    )
    summary = state.result()
    assert (summary["ok"], summary["failed"]) == (8, 2)
    found = artifacts(state.state_details.flow_run_id)
    assert "stylize-summary" in found and found["stylize-report"].data.count("data:image/jpeg;base64,") == 8
    results = pq.read_table(io.BytesIO(s3_server.storage().read_bytes(f"{output}/results.parquet")))
    ok = [row for row in results.to_pylist() if row["status"] == "ok"]
    assert len(ok) == 8 and all(row["model_id"].startswith("retro:1900s-sepia:") for row in ok)  # era per row
    again = stylize_archive_flow(manifest, output, era="1900s-sepia", endpoint_url=endpoint)
    assert (again["already_done"], again["ok"]) == (8, 0)
    bad = stylize_archive_flow(manifest, output, era="1700s", endpoint_url=endpoint, return_state=True)
    assert bad.is_failed() and "unknown era '1700s'" in str(bad.result(raise_on_failure=False))
    # The look of a reference photo (one of the archive's own scans), read by a retro model.
    like = f"s3://{archive}/like-old"
    reference, model = ok[0]["uri"], str(tiny_retro_checkpoint)
    first = stylize_archive_flow(manifest, like, reference=reference, model=model, endpoint_url=endpoint)
    assert (first["ok"], first["failed"]) == (8, 2), first["failures_by_reason"]  # the archive's 2 bad files
    schema = pq.read_schema(io.BytesIO(s3_server.storage().read_bytes(f"{like}/results.parquet")))
    look = json.loads(schema.metadata[b"patina.model"])
    assert look["family"] == "retro" and look["reference"] == reference and "sensitivity" in look["params"]
