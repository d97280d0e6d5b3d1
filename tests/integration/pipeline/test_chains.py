"""The two ways ``build_dataset`` chains the stages give the same results: separate stages (GPU clusters:
fetch, decode and encode in CPU tasks beside one actor per GPU) and one fused actor per CPU (CPU-only
clusters). The Ray here declares one GPU, so the GPU chain is scheduled as on a GPU node; its actor finds no
CUDA and restores on the CPU, which is what lets this run in CI."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import ray
from PIL import Image

from model.checkpoints import checkpoint_id, decode_checkpoint
from pipeline.batch.config import PipelineConfig
from pipeline.batch.driver import RestoreJob, build_dataset
from pipeline.storage import Storage

pytestmark = pytest.mark.usefixtures("no_ray")  # its own Ray, or none: not the shared one


@pytest.fixture(scope="module")
def ray_with_a_gpu():
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_gpu_and_cpu_chains_write_the_same_outputs(ray_with_a_gpu, tmp_path, photo, tiny_checkpoint):
    scans = tmp_path / "scans"
    scans.mkdir()
    photo.resize((96, 64)).save(scans / "rgb.jpg", quality=90)
    photo.convert("L").save(scans / "gray.png")
    photo.convert("RGBA").rotate(30).save(scans / "rgba.png")
    (scans / "broken.png").write_bytes(b"not an image")
    names = ["rgb.jpg", "gray.png", "missing.png", "rgba.png", "broken.png"]
    todo = pa.table(
        {
            "id": names,
            "uri": [str(scans / name) for name in names],
            "size": pa.array([100_000] * len(names), pa.int64()),  # two rows per block
        }
    )
    data = tiny_checkpoint.read_bytes()
    model_id = checkpoint_id(data, decode_checkpoint(data, str(tiny_checkpoint))[1])
    rows = {}
    for gpus in (1, 0):
        job = RestoreJob(
            manifest="unused",
            output=str(tmp_path / f"out-{gpus}"),
            model=str(tiny_checkpoint),
            pipeline=PipelineConfig(tile=64, overlap=8, block_bytes=200_000),
        )
        ds = build_dataset(todo, job, Storage(), model_id, num_gpus=gpus, num_cpus=2)
        rows[gpus] = {row["id"]: row for row in ds.take_all()}

    assert set(rows[0]) == set(rows[1]) == set(names)
    for name in names:
        gpu, cpu = rows[1][name], rows[0][name]
        assert (gpu["status"], gpu["error"], gpu["output_sha256"]) == (
            cpu["status"],
            cpu["error"],
            cpu["output_sha256"],
        ), name
    assert {n for n in names if rows[0][n]["status"] == "ok"} == {"rgb.jpg", "gray.png", "rgba.png"}
    assert rows[0]["broken.png"]["error"] == "not an image (unrecognised format)"
    assert "missing.png" in rows[0]["missing.png"]["error"]
    with Image.open(rows[0]["rgba.png"]["output_uri"]) as restored:
        assert restored.mode == "RGBA"
        changed = np.abs(
            np.asarray(restored, np.int16) - np.asarray(photo.convert("RGBA").rotate(30), np.int16)
        )
        assert changed[..., :3].mean() > 1 and not changed[..., 3].any()  # restored; alpha carried over
