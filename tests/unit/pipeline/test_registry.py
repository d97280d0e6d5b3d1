"""The model registry's promotion rule on real files: better promotes, a tie keeps the current model."""

from __future__ import annotations

import json
import shutil

from PIL import Image

from pipeline.storage import Storage
from pipeline.training.registry import decide


def test_a_tie_keeps_the_current_model(tmp_path, photo, tiny_checkpoint):
    # The same weights scored twice on the same val copy tie exactly: promoting on a tie would churn the
    # registry (a new latest.json, a replaced model) for nothing.
    val = tmp_path / "val"
    val.mkdir()
    photo.resize((64, 48)).save(val / "a.png")
    photo.resize((64, 48)).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(val / "b.png")
    registry, storage = str(tmp_path / "registry"), Storage()
    first = decide(str(tiny_checkpoint), registry, str(val), storage, baseline=False)
    assert first.promoted and first.current_id is None
    latest_before = (tmp_path / "registry" / "latest.json").read_bytes()
    same = tmp_path / "incoming" / "same.safetensors"
    same.parent.mkdir()
    shutil.copy(tiny_checkpoint, same)

    again = decide(str(same), registry, str(val), storage, baseline=False)

    assert not again.promoted and again.candidate_psnr == again.current_psnr
    assert again.reason.startswith(f"val PSNR {again.candidate_psnr:.2f} dB <= current")
    assert (tmp_path / "registry" / "latest.json").read_bytes() == latest_before
    history = sorted((tmp_path / "registry" / "history").iterdir())
    assert [json.loads(p.read_text())["promoted"] for p in history] == [True, False]
