"""The benchmark scripts run end to end (tiny sizes): a benchmark that crashes when someone finally has the
machine to run it on is worse than none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(300)
def test_restore_benchmark_runs_and_reports_every_figure():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "benchmarks/restore.py", "--images", "3", "--megapixels", "0.01"]
    run = subprocess.run(
        [*command, "--ceiling-seconds", "0.5"], cwd=REPO, env=env, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for line in (
        "naive sequential loop:",
        "Ray Data pipeline:",
        "Ray start:",
        "ratio pipeline / naive:",
        "generator forward only:",
    ):
        assert line in run.stdout, run.stdout


@pytest.mark.timeout(120)
def test_retro_speed_benchmark_reports_every_era():
    from model.retro.eras import ERAS

    run = subprocess.run(
        [sys.executable, "benchmarks/retro_speed.py", "--megapixels", "0.05", "--repeat", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "restoration generator (shipped):" in run.stdout
    for name in [*ERAS, "retro model (reference)"]:
        assert f"{name} " in run.stdout and "x the generator" in run.stdout, run.stdout


@pytest.mark.timeout(240)
def test_gpu_benchmark_plumbing_runs_without_a_gpu(tmp_path):
    # CI never has a GPU: the one-command GPU benchmark must still run here, write its JSON, and say what it
    # skipped, so the first lent GPU gives figures instead of a traceback.
    import json

    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(
        ["bash", "benchmarks/gpu.sh", "--quick"],
        cwd=REPO,
        env={**env, "OUT": str(tmp_path), "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert (tmp_path / "gpu.log").stat().st_size > 0
    for section in ("forward", "train", "degradation", "restore"):
        assert "failed" not in report[section], report[section]
    assert report["forward"]["tiny"]["mp_per_s_by_batch"]["1"] > 0
    assert report["train"]["tiny"]["mp_per_s"]["stage2"] > 0
    assert report["degradation"]["cpu"]["images_per_s"] > 0
    if report["cuda"].startswith("not available"):
        assert report["degradation"]["cuda"] == {"skipped": "no CUDA device"}
    assert report["restore"]["0.02MP"]["pipeline_images_per_s"] > 0


@pytest.mark.timeout(240)
def test_archive_scale_benchmark_reports_each_size():
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    run = subprocess.run(
        [sys.executable, "benchmarks/archive_scale.py", "--sizes", "200,400", "--run-rows", "8"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert "driver peak RSS MB" in lines[0] and lines[1].split()[0] == "200" and lines[2].split()[0] == "400"
