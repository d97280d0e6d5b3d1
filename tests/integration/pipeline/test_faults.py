"""Fault injection with real components (#9): S3 outages through a proxy the test takes down mid-run."""

from __future__ import annotations

import io
import threading

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from pipeline.batch.config import PipelineConfig, RestoreJob
from pipeline.batch.driver import restore_archive
from pipeline.batch.summary import RunProgress
from pipeline.manifest import read_results
from pipeline.storage import StorageOptions

ROWS = 12


def _outage_after_first_batch(proxy, seconds: float):
    """on_progress hook: take S3 down when the first rows are done, and back up ``seconds`` later."""
    started = threading.Event()

    def hook(progress: RunProgress) -> None:
        if progress.processed and not started.is_set():
            started.set()
            proxy.outage()
            threading.Timer(seconds, proxy.outage, args=(False,)).start()

    return hook, started


def _job(manifest: str, output: str, model: str, endpoint: str, patience: float) -> RestoreJob:
    return RestoreJob(
        manifest=manifest,
        output=output,
        model=model,
        pipeline=PipelineConfig(tile=48, overlap=8, batch_size=2, output_format="png"),
        storage=StorageOptions(endpoint_url=endpoint, max_attempts=2, outage_patience_s=patience),
        flush_rows=2,
    )


def test_a_short_s3_outage_mid_run_is_waited_out(s3_server, outage_proxy, ray_local, photo, tiny_checkpoint):
    archive = s3_server.scan_archive(photo, ROWS, tiny_checkpoint, size=(48, 36))  # behind the proxy's back
    manifest, model, output = archive.manifest, archive.model, f"s3://{archive.bucket}/restored"
    hook, started = _outage_after_first_batch(outage_proxy, seconds=4)

    summary = restore_archive(_job(manifest, output, model, outage_proxy.endpoint_url, patience=60), hook)

    assert started.is_set() and (summary.ok, summary.failed) == (ROWS, 0)
    assert summary.seconds > 4  # the driver's next result part waited for S3 to come back
    direct = s3_server.storage()
    parts = read_results(output, direct)
    assert sorted(parts["id"].to_pylist()) == sorted(set(parts["id"].to_pylist()))  # each row recorded once
    written = sorted(o.uri for o in direct.list(output, (".png",)))
    assert written == sorted(
        pq.read_table(io.BytesIO(direct.read_bytes(summary.results_uri)))["output_uri"].to_pylist()
    )
    for uri in written:
        Image.open(io.BytesIO(direct.read_bytes(uri))).load()  # whole images only


def test_a_long_s3_outage_fails_rows_that_a_rerun_finishes(
    s3_server, outage_proxy, ray_local, photo, tiny_checkpoint, tmp_path
):
    # The images are on S3 and S3 is down for longer than the patience: every row fails with the reason
    # (instead of hanging or aborting the job), and the re-run after the outage restores each row once.
    archive = s3_server.scan_archive(photo, ROWS, tiny_checkpoint, size=(48, 36))
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"uri": archive.uris}), manifest)
    output = str(tmp_path / "restored")
    job = _job(str(manifest), output, str(tiny_checkpoint), outage_proxy.endpoint_url, patience=1)
    outage_proxy.outage()

    first = restore_archive(job)

    assert (first.ok, first.failed) == (0, ROWS)
    assert list(first.failures_by_reason) == ["transient connection error"], first.failures_by_reason
    errors = pq.read_table(first.results_uri)["error"].to_pylist()
    assert all(error.endswith("(waited 1 s for the outage to pass)") for error in errors), errors[0]
    outage_proxy.outage(False)
    second = restore_archive(job)
    assert (second.already_done, second.ok, second.failed) == (0, ROWS, 0)
    results = pq.read_table(second.results_uri)
    assert set(results["status"].to_pylist()) == {"ok"} and results.num_rows == ROWS
    written = sorted(str(p) for p in (tmp_path / "restored").rglob("*.png"))
    assert written == sorted(results["output_uri"].to_pylist())
