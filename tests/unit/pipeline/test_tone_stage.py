"""``--tone auto`` in the archive job: one correction per image read from the whole input and applied after
the repair, recorded in the result row (and redone from it), capped by ``--tone-strength``, grey kept grey,
and a resume with other tone options refused. Real stages and the shipped weights, in-process (no Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from model.degradation import aging
from model.files import DEFAULT_CHECKPOINT
from model.tone.physics import ToneCorrection, correct
from pipeline.batch.config import PipelineConfig
from pipeline.batch.fused import FusedActor
from pipeline.batch.restorer import Restorer
from pipeline.storage import Storage


def _faded(size=(240, 200)) -> np.ndarray:
    """The astronaut with a dye fade, a yellowed base and a fade toward the paper: an aged colour print."""
    clean = torch.from_numpy(np.asarray(Image.fromarray(skimage.data.astronaut()).resize(size)))
    x = clean.permute(2, 0, 1).float() / 255
    x = aging.fade(
        aging.yellowing(aging.dye_fade(x, 0.3, 0.1, 0.15), 1.0, [1, 0.94, 0.75]), 0.35, [0.93, 0.88, 0.74]
    )
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _restorer(**pipeline) -> Restorer:
    return Restorer(str(DEFAULT_CHECKPOINT), pipeline=PipelineConfig(**pipeline), device="cpu")


def _tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1).float() / 255


def test_auto_is_one_correction_after_the_repair_and_the_row_can_redo_it():
    faded = _faded()
    kept, _, _, none = _restorer().restore_toned(faded)
    toned, _, _, record = _restorer(tone="auto").restore_toned(faded)
    assert none == "" and record
    correction = ToneCorrection.from_json(record)
    assert correction.strength > 0.5 and correction.fade > 0.1
    # The recorded correction, applied to the kept repair, gives the output: it can be seen and undone.
    redone = (correct(_tensor(kept), correction).permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(redone - toned.astype(float)).max() <= 1
    assert np.abs(toned.astype(int) - kept.astype(int)).mean() > 10  # and it did move the print


def test_tiled_and_untiled_get_the_same_correction():
    faded = _faded((300, 260))
    whole, _, _, a = _restorer(tone="auto", tile=1024).restore_toned(faded)
    tiled, _, _, b = _restorer(tone="auto", tile=128, overlap=32).restore_toned(faded)
    assert a == b  # read from the whole image, not per tile
    assert np.abs(whole.astype(int) - tiled.astype(int)).mean() < 1.0


def test_strength_zero_is_keep_and_the_cap_holds():
    faded = _faded()
    kept, *_ = _restorer().restore_toned(faded)
    zero, _, _, record = _restorer(tone="auto", tone_strength=0.0).restore_toned(faded)
    assert np.array_equal(zero, kept) and ToneCorrection.from_json(record).strength == 0
    _, _, _, capped = _restorer(tone="auto", tone_strength=0.3).restore_toned(faded)
    assert ToneCorrection.from_json(capped).strength <= 0.3


def test_a_grey_scan_stays_grey():
    grey = np.asarray(Image.fromarray(_faded()).convert("L"))[..., None]
    out, *_ = _restorer(tone="auto").restore_toned(grey)
    assert out.shape == grey.shape and out.dtype == np.uint8


def test_the_result_row_records_the_correction(tmp_path: Path):
    Image.fromarray(_faded()).save(tmp_path / "a.png")
    uri = str(tmp_path / "a.png")

    def run(tone: str, out: str):
        actor = FusedActor(
            Restorer,
            {"checkpoint": str(DEFAULT_CHECKPOINT), "pipeline": PipelineConfig(tone=tone), "device": "cpu"},
            10**7,
            {
                "output_prefix": str(tmp_path / out),
                "output_format": "same",
                "storage": Storage(),
                "model_id": "m",
            },
        )
        return actor({"id": np.array([uri], dtype=object), "uri": np.array([uri], dtype=object)})

    auto, keep = run("auto", "auto"), run("keep", "keep")
    assert auto["status"][0] == keep["status"][0] == "ok"
    assert ToneCorrection.from_json(auto["tone"][0]).strength > 0.5
    assert keep["tone"][0] is None


@pytest.mark.parametrize(
    ("options", "message"),
    [({"tone": "warm"}, "unknown tone 'warm'"), ({"tone_strength": 1.5}, "--tone-strength must lie between")],
)
def test_bad_tone_options_are_one_line(options, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig(**options)


def test_a_resume_with_another_tone_is_refused(tmp_path):
    from pipeline.batch.lease import check_settings

    storage, out = Storage(), str(tmp_path / "out")
    first = {"output_format": "same", "fill": "mask", "masks": False, "tone": "keep", "tone_strength": 1.0}
    check_settings(storage, out, first)
    with pytest.raises(ValueError, match="--tone keep"):
        check_settings(storage, out, {**first, "tone": "auto"})
    with pytest.raises(ValueError, match=r"--tone-strength 1\.0"):
        check_settings(storage, out, {**first, "tone_strength": 0.5})
