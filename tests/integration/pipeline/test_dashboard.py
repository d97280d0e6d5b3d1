"""`patina restore --dashboard`: the Ray dashboard answers while a local run is going."""

import json
import urllib.request
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from pipeline.batch.driver import RestoreJob, restore_archive

pytestmark = pytest.mark.usefixtures("no_ray")  # its own Ray, or none: not the shared one


def test_dashboard_serves_during_a_local_run(tmp_path, photo, tiny_checkpoint):
    assert not ray.is_initialized()  # restore_archive must start (and stop) its own local Ray
    (tmp_path / "in").mkdir()
    for i in range(2):
        photo.resize((48, 32)).save(tmp_path / "in" / f"{i}.png")
    pq.write_table(
        pa.table({"uri": [str(tmp_path / "in" / f"{i}.png") for i in range(2)]}), tmp_path / "m.parquet"
    )
    answers = []

    def ask_dashboard(progress) -> None:
        if answers:
            return
        token = (Path.home() / ".ray" / "auth_token").read_text().strip()
        url = f"{progress.dashboard_url}/api/version"
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answers.append(json.loads(response.read()))

    job = RestoreJob(str(tmp_path / "m.parquet"), str(tmp_path / "out"), str(tiny_checkpoint), dashboard=True)
    summary = restore_archive(job, on_progress=ask_dashboard)
    assert summary.ok == 2
    assert answers and answers[0]["ray_version"] == ray.__version__
    assert not ray.is_initialized()
