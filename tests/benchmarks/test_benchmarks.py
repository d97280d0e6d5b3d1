"""The benchmark scripts run end to end (tiny sizes): a benchmark that crashes when someone finally has the
machine to run it on is worse than none."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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
