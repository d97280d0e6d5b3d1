"""Kill -9 the driver mid-run, re-run the same command: only the remainder is processed, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.manifest import RESULTS_DIR, build_manifest
from pipeline.storage import Storage

ROWS = 40
PATINA = str(Path(sys.executable).parent / "patina")


def _ok_ids(parts: list[Path]) -> set[str]:
    ids: set[str] = set()
    for part in parts:
        table = pq.read_table(part, columns=["id", "status"])
        ids |= {
            i for i, s in zip(table["id"].to_pylist(), table["status"].to_pylist(), strict=True) if s == "ok"
        }
    return ids


def _ray_free_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)  # the CLI must start its own local Ray, as a user's would
    return env


@pytest.mark.timeout(300)
def test_kill_driver_then_resume(tmp_path, photo, tiny_checkpoint):
    archive = tmp_path / "archive"
    archive.mkdir()
    for i in range(ROWS):
        photo.resize((64, 48)).rotate(i * 9).save(archive / f"print{i:03d}.jpg", quality=90)
    manifest, output = tmp_path / "manifest.parquet", tmp_path / "restored"
    build_manifest(str(archive), str(manifest), Storage())
    command = [PATINA, "restore", "--manifest", str(manifest), "--output", str(output)]
    command += [
        "--model",
        str(tiny_checkpoint),
        "--batch-size",
        "2",
        "--flush-rows",
        "4",
        "--tile",
        "32",
        "--overlap",
        "8",
    ]

    # A real interruption: SIGKILL the driver's whole process group once some results are recorded.
    first = subprocess.Popen(command, start_new_session=True, env=_ray_free_env(), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    parts: list[Path] = []
    while len(parts) < 2 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
        parts = sorted((output / RESULTS_DIR).glob("part-*.parquet"))
    assert first.poll() is None, "the run finished before it could be interrupted"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_first = _ok_ids(sorted((output / RESULTS_DIR).glob("part-*.parquet")))
    assert 0 < len(done_first) < ROWS
    assert not (output / "results.parquet").exists()
    parts_before = set((output / RESULTS_DIR).glob("part-*.parquet"))
    # What a kill in the middle of a local write leaves (rare to hit by chance, so planted): the re-run
    # removes it before it starts.
    (output / "box").mkdir(exist_ok=True)
    (output / "box" / f".print000.jpg.{'ab' * 16}.tmp").write_bytes(b"half an image")

    second = subprocess.run(command, env=_ray_free_env(), capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{len(done_first)} already done" in second.stdout
    # No warnings about choices we made on purpose (auth mode, Ray Data's own progress bars off).
    for noise in ("Token authentication is enabled", "Progress bars disabled"):
        assert noise not in second.stderr + second.stdout

    new_parts = sorted(set((output / RESULTS_DIR).glob("part-*.parquet")) - parts_before)
    processed_second = [i for p in new_parts for i in pq.read_table(p, columns=["id"])["id"].to_pylist()]
    all_ids = {str(archive / f"print{i:03d}.jpg") for i in range(ROWS)}
    assert len(processed_second) == len(set(processed_second))  # nothing twice
    assert set(processed_second) == all_ids - done_first  # exactly the remainder

    results = pq.read_table(output / "results.parquet")
    assert results.num_rows == ROWS and set(results["id"].to_pylist()) == all_ids
    assert set(results["status"].to_pylist()) == {"ok"}
    for uri in results["output_uri"].to_pylist():
        with Image.open(uri) as restored:
            restored.load()  # every output at its final key is whole
            assert restored.size == (64, 48)
    leftovers = [p for p in output.rglob("*") if p.is_file() and p.suffix not in (".jpg", ".parquet")]
    # No temp files, and no lease, under output after the completed re-run; the run's settings stay.
    assert leftovers == [output / RESULTS_DIR / "settings.json"]


@pytest.mark.timeout(600)
def test_kills_at_seeded_random_moments_lose_nothing(tmp_path, photo, tiny_checkpoint):
    # kill -9 of the driver's process group at seeded random moments (during Ray's start, planning, the run
    # or the final fold), the state checked right after each kill, then resumed until a run completes.
    import random

    rng = random.Random(20261130)
    archive = tmp_path / "archive"
    archive.mkdir()
    for i in range(ROWS):
        photo.resize((48, 36)).rotate(i * 9).save(archive / f"print{i:03d}.png")
    manifest, output = tmp_path / "manifest.parquet", tmp_path / "restored"
    build_manifest(str(archive), str(manifest), Storage())
    command = [PATINA, "restore", "--manifest", str(manifest), "--output", str(output), "--model"]
    command += [
        str(tiny_checkpoint),
        "--batch-size",
        "2",
        "--flush-rows",
        "2",
        "--tile",
        "48",
        "--overlap",
        "8",
    ]
    all_ids = {str(archive / f"print{i:03d}.png") for i in range(ROWS)}

    kills = _kill_at_seeded_moments(command, rng, 4, (2, 12), lambda: _check_after_kill(output, all_ids))

    assert kills >= 3  # the seed gives kills at several moments, not one
    parts = sorted((output / RESULTS_DIR).glob("part-*.parquet"))
    ok_rows = [
        i
        for part in parts
        for i, s in zip(*pq.read_table(part, columns=["id", "status"]).to_pydict().values(), strict=True)
        if s == "ok"
    ]
    assert len(ok_rows) == len(set(ok_rows)) == ROWS  # each row restored and recorded exactly once
    results = pq.read_table(output / "results.parquet")
    assert set(results["id"].to_pylist()) == all_ids and set(results["status"].to_pylist()) == {"ok"}
    outputs = sorted(p for p in output.rglob("*") if p.is_file() and RESULTS_DIR not in p.parts)
    assert sorted(map(str, outputs)) == sorted(
        [*results["output_uri"].to_pylist(), str(output / "results.parquet")]
    )


def _kill_at_seeded_moments(
    command: list[str], rng, kills: int, window: tuple[float, float], check: Callable[[], None]
) -> int:
    """Run ``command`` until a run completes: the first ``kills`` runs are SIGKILLed (the whole process
    group) after a seeded number of seconds drawn from ``window``, each followed by ``check`` of the state
    left behind. Returns how many runs were killed (a run may finish before its moment comes)."""
    killed = 0
    while True:
        run = subprocess.Popen(
            command, start_new_session=True, env=_ray_free_env(), stdout=subprocess.DEVNULL
        )
        try:
            run.wait(timeout=rng.uniform(*window) if killed < kills else 240)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
            killed += 1
            check()
            continue
        assert run.returncode == 0
        return killed


def _check_after_kill(output: Path, all_ids: set[str]) -> None:
    """Right after a kill: every recorded part is whole and names manifest rows; every file at a final key
    is a whole image; no results.parquet unless a run got to its end."""
    for part in (output / RESULTS_DIR).glob("part-*.parquet"):
        assert set(pq.read_table(part, columns=["id"])["id"].to_pylist()) <= all_ids
    for path in output.rglob("*.png"):
        if not path.name.startswith("."):
            with Image.open(path) as image:
                image.load()


@pytest.mark.timeout(600)
def test_kills_with_s3_output_lose_nothing(tmp_path, photo, tiny_checkpoint, s3_server):
    # The S3 variant: scans and outputs on S3 (moto over HTTP). After each seeded kill every object at a
    # final key is a whole image (one PUT each) and every result part is whole; resumed to the end, each row
    # is restored and recorded exactly once.
    import io
    import json
    import random

    rng = random.Random(7)
    storage = s3_server.storage()
    bucket = s3_server.create_bucket()
    for i in range(ROWS // 2):
        buffer = io.BytesIO()
        photo.resize((48, 36)).rotate(i * 9).save(buffer, "PNG")
        storage.write_bytes(f"s3://{bucket}/scans/{i:03d}.png", buffer.getvalue())
    manifest, output = f"s3://{bucket}/manifest.parquet", f"s3://{bucket}/restored"
    build_manifest(f"s3://{bucket}/scans", manifest, storage)
    command = [PATINA, "restore", "--manifest", manifest, "--output", output, "--model", str(tiny_checkpoint)]
    command += ["--batch-size", "2", "--flush-rows", "2", "--tile", "48", "--overlap", "8"]
    command += ["--endpoint-url", s3_server.endpoint_url]

    def check_objects() -> None:
        for obj in storage.list(output):
            data = storage.read_bytes(obj.uri)
            if obj.uri.endswith(".parquet"):
                pq.read_table(io.BytesIO(data))  # whole
            elif obj.uri.endswith(".json"):  # the run's lease and settings (pipeline/batch/lease.py)
                json.loads(data)
            else:
                Image.open(io.BytesIO(data)).load()  # whole

    _kill_at_seeded_moments(command, rng, 2, (4, 12), check_objects)

    parts = [o.uri for o in storage.list(f"{output}/{RESULTS_DIR}", (".parquet",))]
    ok = []
    for part in parts:
        table = pq.read_table(io.BytesIO(storage.read_bytes(part)), columns=["id", "status"]).to_pydict()
        ok += [i for i, status in zip(table["id"], table["status"], strict=True) if status == "ok"]
    assert len(ok) == len(set(ok)) == ROWS // 2
    results = pq.read_table(io.BytesIO(storage.read_bytes(f"{output}/results.parquet")))
    assert set(results["status"].to_pylist()) == {"ok"}
    written = sorted(o.uri for o in storage.list(output, (".png",)))
    assert written == sorted(results["output_uri"].to_pylist())
