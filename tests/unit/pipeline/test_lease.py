"""One run per output prefix: a second run is refused while the first lives, and the lease of a run that
died is taken over (same host: its process is gone; elsewhere: it was not renewed in time)."""

import json
import subprocess
import sys
import time

import pytest

from pipeline.batch import lease as lease_module
from pipeline.batch.lease import lease_uri, take_lease
from pipeline.storage import Storage


def test_a_second_run_is_refused_while_the_first_holds_the_prefix(tmp_path):
    storage, out = Storage(), str(tmp_path / "out")
    with take_lease(storage, out):
        with pytest.raises(ValueError, match="being written by another run") as info:
            take_lease(storage, out)
        assert "\n" not in str(info.value)
    with take_lease(storage, out):  # released: the next run goes on
        pass
    assert not storage.exists(lease_uri(storage, out))


def test_the_lease_of_a_killed_run_is_taken_over(tmp_path):
    storage, out = Storage(), str(tmp_path / "out")
    # A run on this host that was killed: its pid no longer exists.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    record = {
        "run_id": "killed",
        "host": lease_module.socket.gethostname(),
        "pid": int(dead.stdout),
        "renewed": time.time(),
    }
    storage.write_bytes(lease_uri(storage, out), json.dumps(record).encode())
    with take_lease(storage, out) as taken:
        assert json.loads(storage.read_bytes(lease_uri(storage, out)))["run_id"] == taken.run_id
    # A run on another host: alive while renewed, gone once the lease expired.
    other = {"run_id": "far", "host": "another-node", "pid": 1, "renewed": time.time()}
    storage.write_bytes(lease_uri(storage, out), json.dumps(other).encode())
    with pytest.raises(ValueError, match="host another-node"):
        take_lease(storage, out)
    other["renewed"] = time.time() - lease_module.LEASE_TTL_S - 1
    storage.write_bytes(lease_uri(storage, out), json.dumps(other).encode())
    take_lease(storage, out).release()


def test_the_lease_is_renewed_while_the_run_lives(tmp_path, monkeypatch):
    monkeypatch.setattr(lease_module, "RENEW_EVERY_S", 0.05)
    storage, out = Storage(), str(tmp_path / "out")
    with take_lease(storage, out):
        first = json.loads(storage.read_bytes(lease_uri(storage, out)))["renewed"]
        time.sleep(0.3)
        assert json.loads(storage.read_bytes(lease_uri(storage, out)))["renewed"] > first


def test_restore_archive_refuses_a_leased_prefix_before_any_work(tmp_path, photo):
    from pipeline.batch.config import archive_job
    from pipeline.batch.driver import restore_archive
    from pipeline.manifest import build_manifest

    storage = Storage()
    (tmp_path / "scans").mkdir()
    photo.save(tmp_path / "scans" / "a.png")
    manifest = str(tmp_path / "m.parquet")
    build_manifest(str(tmp_path / "scans"), manifest, storage)
    out = str(tmp_path / "out")
    live = {"run_id": "first", "host": "another-node", "pid": 7, "renewed": time.time()}
    storage.write_bytes(lease_uri(storage, out), json.dumps(live).encode())
    with pytest.raises(ValueError, match="being written by another run"):
        restore_archive(archive_job(manifest, out))
    assert sorted(p.name for p in (tmp_path / "out").rglob("*") if p.is_file()) == ["lease.json"]


def test_a_resume_with_another_format_or_fill_is_refused(tmp_path):
    from pipeline.batch.lease import check_settings

    storage, out = Storage(), str(tmp_path / "out")
    first = {"output_format": "same", "fill": "mask", "masks": False}
    check_settings(storage, out, first)
    check_settings(storage, out, dict(first))  # the same options: a plain resume
    with pytest.raises(ValueError, match="was started with --format same; resume with the same options"):
        check_settings(storage, out, {**first, "output_format": "png"})
    with pytest.raises(ValueError, match="--fill mask"):
        check_settings(storage, out, {**first, "fill": "telea"})
