"""The train-gan flow on a real Prefect server with Ray Train (1 CPU worker, `tiny`), and promotion into a
model registry on moto's S3 server: a better model replaces the current one, a worse one does not."""

from __future__ import annotations

import json

import pytest
import skimage.data
from PIL import Image

from flows.train import train_gan_flow
from pipeline.training.registry import decide

pytestmark = pytest.mark.usefixtures("prefect_server", "ray_local")


@pytest.fixture(scope="module")
def photo_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "train").mkdir()
    (root / "val").mkdir()
    for name in ("astronaut", "chelsea", "coffee"):
        Image.fromarray(getattr(skimage.data, name)()).resize((120, 90)).save(root / "train" / f"{name}.jpg")
    for name in ("camera", "rocket"):
        Image.fromarray(getattr(skimage.data, name)()).resize((64, 48)).save(root / "val" / f"{name}.png")
    return root


def test_train_then_promote_only_the_better_model(
    s3_server, photo_folders, tiny_checkpoint, tmp_path, artifacts
):
    storage = s3_server.storage()
    bucket = s3_server.create_bucket()
    registry = f"s3://{bucket}/models"
    val = f"s3://{bucket}/val"  # on S3, as on a cluster whose nodes share no folder
    for path in (photo_folders / "val").iterdir():
        storage.write_bytes(f"{val}/{path.name}", path.read_bytes())
    # The registry starts with a poor model: tiny_checkpoint's random residual visibly damages images.
    storage.write_bytes(f"{registry}/incoming/poor.safetensors", tiny_checkpoint.read_bytes())
    first = decide(f"{registry}/incoming/poor.safetensors", registry, val, storage)
    assert first.promoted and first.current_id is None
    poor_id = first.candidate_id

    # Training starts from the identity (zero-initialised residual) and learns a little: better than poor.
    state = train_gan_flow(
        data=str(photo_folders / "train"),
        val=val,
        output=str(tmp_path / "run"),
        registry=registry,
        preset="tiny",
        steps=4,
        batch_size=2,
        crop=32,
        checkpoint_every=2,
        endpoint_url=s3_server.endpoint_url,
        return_state=True,
    )
    result = state.result()
    assert result["train"]["step"] == 4
    decision = result["decision"]
    assert decision["promoted"] and decision["current_id"] == poor_id
    assert decision["candidate_psnr"] > decision["current_psnr"]
    latest = json.loads(storage.read_bytes(f"{registry}/latest.json"))
    assert latest["model_id"] == decision["candidate_id"] and latest["replaced"] == poor_id
    assert (
        storage.read_bytes(f"{registry}/latest.safetensors")
        == (tmp_path / "run" / "model.safetensors").read_bytes()
    )
    found = artifacts(state.state_details.flow_run_id)
    rows = json.loads(found["train-validation"].data)
    assert {(r["method"], r["severity"]) for r in rows} == {
        (m, s) for m in ("degraded", "baseline", "model") for s in ("light", "medium", "heavy", "published")
    }
    assert found["train-promotion"].data.startswith("# Promoted")

    # The poor model again: scored against the new current model on the same val set, it is not promoted.
    again = decide(f"{registry}/incoming/poor.safetensors", registry, val, storage)
    assert not again.promoted and again.current_id == decision["candidate_id"]
    assert json.loads(storage.read_bytes(f"{registry}/latest.json"))["model_id"] == decision["candidate_id"]
    # Nothing was lost: both promoted models stay under versions/, and every decision is in the history.
    versions = sorted(o.uri.rsplit("/", 1)[1] for o in storage.list(f"{registry}/versions"))
    assert versions == sorted([f"{poor_id}.safetensors", f"{decision['candidate_id']}.safetensors"])
    history = [json.loads(storage.read_bytes(o.uri)) for o in storage.list(f"{registry}/history")]
    assert [h["promoted"] for h in history] == [True, True, False]  # names sort by time
