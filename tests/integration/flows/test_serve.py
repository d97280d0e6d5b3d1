"""`patina serve`: schedules from TOML become deployments on a real Prefect server, and the served process
runs a triggered flow run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

from flows.serve import load_schedules, register

pytestmark = pytest.mark.usefixtures("prefect_server")
REPO = Path(__file__).resolve().parents[3]


def _schedules(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "schedules.toml"
    path.write_text(body)
    return path


def test_shipped_schedules_register_with_their_cron_and_parameters():
    schedules = load_schedules(REPO / "deploy" / "schedules.toml")
    ids = register(schedules)
    assert len(ids) == len(schedules) >= 2
    with get_client(sync_client=True) as client:
        for s in schedules:
            deployment = client.read_deployment_by_name(f"{s.flow}/{s.name}")
            assert [d.schedule.cron for d in deployment.schedules] == [s.cron]
            assert deployment.schedules[0].schedule.timezone == s.timezone
            assert deployment.parameters == s.parameters
            assert deployment.paused == s.paused


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[deployment]]\nname = "x"\nflow = "restore-everything"\ncron = "0 2 * * *"\n', "unknown flow"),
        ('[[deployment]]\nname = "x"\nflow = "build-manifest"\ncron = "0 25 * * *"\n', "Invalid cron"),
        (
            '[[deployment]]\nname = "x"\nflow = "build-manifest"\ncron = "0 2 * * *"\n'
            '[deployment.parameters]\nsource = "s3://bucket/scans"\n',
            r"missing required parameter\(s\) out",
        ),
        ('[[deployment]]\nname = "x"\nflow = "build-manifest"\ncron = "0 2 * * *"\ncolour = 1\n', "colour"),
    ],
)
def test_bad_schedules_are_one_line_errors(tmp_path, body, message):
    with pytest.raises(ValueError, match=message) as caught:
        load_schedules(_schedules(tmp_path, body))
    assert "\n" not in str(caught.value)


def test_patina_serve_runs_a_triggered_deployment(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8), (i * 40, 90, 200)).save(scans / f"print{i}.png")
    manifest = tmp_path / "manifest.parquet"
    config = _schedules(
        tmp_path,
        f'[[deployment]]\nname = "hourly-listing"\nflow = "build-manifest"\ncron = "0 * * * *"\n'
        f'[deployment.parameters]\nsource = "{scans}"\nout = "{manifest}"\n',
    )
    env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with get_client(sync_client=True) as client:
            deployment = _wait(lambda: client.read_deployment_by_name("build-manifest/hourly-listing"))
            # At most one run of a deployment at a time, as the server itself enforces it.
            limit = deployment.global_concurrency_limit
            assert deployment.concurrency_limit == 1 or (limit is not None and limit.limit == 1), deployment
            run = client.create_flow_run_from_deployment(deployment.id)
            final = _wait(lambda: _finished(client.read_flow_run(run.id)), timeout=120)
        assert final.state.is_completed(), final.state
        assert manifest.exists()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def _finished(flow_run):
    return flow_run if flow_run.state and flow_run.state.is_final() else None


def _wait(probe, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = probe()
        except Exception:  # not registered yet
            found = None
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError("gave up waiting")
        time.sleep(0.5)
