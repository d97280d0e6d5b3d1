"""A model that gives NaN or inf: every affected row fails with the reason, nothing is written, and no row
says ok for an output that is not a restoration of its input (a resume would skip it as done)."""

import numpy as np
import torch
from PIL import Image
from stage_batches import manifest

from pipeline.batch.restorer import Restorer
from pipeline.batch.stages import decode, encode_and_write, fetch
from pipeline.storage import Storage


def test_a_non_finite_output_fails_its_row_and_writes_nothing(tmp_path, tiny_checkpoint):
    sources = []
    for name in ("a.png", "b.png"):
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)
        sources.append(str(path))
    storage = Storage()
    restorer = Restorer(str(tiny_checkpoint), storage, device="cpu")
    with torch.no_grad():  # the network itself diverges: its last layer now gives NaN everywhere
        list(restorer.generator.parameters())[-1].fill_(float("nan"))
    restored = restorer(decode(fetch(manifest(sources), storage), 10**6))
    result = encode_and_write(restored, str(tmp_path / "out"), "same", storage, "tiny")
    assert list(result["status"]) == ["failed", "failed"]
    assert all("NaN or inf" in error and "\n" not in error for error in result["error"])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.png"))


def test_a_model_changed_since_planning_fails_every_row_with_the_reason(tmp_path, tiny_checkpoint):
    # The run was planned with one model id; the file now holds another (a registry's latest promoted):
    # rows must fail naming the change, never be restored by (and recorded as) the wrong model.
    import shutil

    from model.checkpoints import DEFAULT_CHECKPOINT, load_generator

    path = tmp_path / "latest.safetensors"
    shutil.copy(tiny_checkpoint, path)
    planned = load_generator(path)[2]
    shutil.copy(DEFAULT_CHECKPOINT, path)
    source = tmp_path / "a.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(source)
    storage = Storage()
    restorer = Restorer(str(path), storage, device="cpu", expected_id=planned)
    assert restorer.model_id == planned  # rows name the model they were planned with
    restored = restorer(decode(fetch(manifest([str(source)]), storage), 10**6))
    assert "changed since the run started" in restored["error"][0]
    same = Restorer(str(tiny_checkpoint), storage, device="cpu", expected_id=planned)
    assert not same.refusal and same.model_id == planned
