"""The global tone stage (``--tone auto``): the physical inverse, its LUT, the shipped estimator on a known
fade and on clean photos, and the recorded correction."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from skimage import data

from model.degradation import aging
from model.files import DEFAULT_TONE_ESTIMATOR
from model.metrics import psnr
from model.tone.estimator import estimate
from model.tone.inference import ToneModelError, auto_tone, load_estimator
from model.tone.physics import ToneCorrection, apply_lut, build_lut, correct, invert, scaled

KNOWN = ToneCorrection(
    fade=0.35, paper=(0.93, 0.88, 0.74), yellow=(0.0, -0.06, -0.25), dye=(0.3, 0.1, 0.15), strength=1.0
)


def _photo(name: str = "astronaut") -> torch.Tensor:
    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1).float().div(255)


def _aged(clean: torch.Tensor, c: ToneCorrection = KNOWN) -> torch.Tensor:
    """The engine's own ops, in its order, with ``c``'s parameters: the forward model ``invert`` undoes."""
    x = aging.dye_fade(clean, *c.dye)
    tint = [1 + v for v in c.yellow]  # yellowing(strength 1, tint) multiplies by 1 + (tint - 1) * weight
    x = aging.yellowing(x, 1.0, tint)
    return aging.fade(x, c.fade, list(c.paper))


def _u8(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def estimator():
    return load_estimator()


def test_the_inverse_undoes_the_engines_ageing_exactly():
    clean = _photo()
    restored = invert(_aged(clean)[None], *scaled(KNOWN))
    assert float((restored[0] - clean).abs().mean()) * 255 < 0.5


def test_the_lut_matches_the_exact_map_and_is_pointwise():
    full = KNOWN
    aged = _aged(_photo())
    exact = invert(aged[None], *scaled(full))[0]
    through = correct(aged, full)
    assert float((through - exact).abs().mean()) * 255 < 0.1
    assert float((through - exact).abs().max()) * 255 < 3
    # Pointwise: a tile through the same LUT is exactly the same pixels of the whole (tiled == untiled).
    lut = build_lut(full)
    tile = apply_lut(aged[:, 100:228, 300:428].contiguous(), lut)
    assert torch.equal(tile, through[:, 100:228, 300:428])


def test_strength_moves_the_correction_toward_leaving_it():
    aged = _aged(_photo())
    assert torch.equal(correct(aged, replace(KNOWN, strength=0.0)), aged)
    half = correct(aged, replace(KNOWN, strength=0.5))
    whole = correct(aged, KNOWN)
    clean = _photo()
    assert psnr(_u8(aged), _u8(clean)) < psnr(_u8(half), _u8(clean)) < psnr(_u8(whole), _u8(clean))


def test_the_recorded_correction_round_trips_and_reproduces_the_output(estimator):
    aged = _aged(_photo())
    corrected, correction = auto_tone(aged, estimator)
    again = ToneCorrection.from_json(correction.to_json())
    assert again == ToneCorrection.from_json(again.to_json())
    assert abs(again.strength - correction.strength) < 1e-4 and abs(again.fade - correction.fade) < 1e-4
    # What a results row records is enough to redo (or undo) the correction to within a grey level.
    assert float((correct(aged, again) - corrected).abs().max()) * 255 < 1.0


def test_the_shipped_estimator_reverses_a_known_fade(estimator):
    clean = _photo()
    aged = _aged(clean)
    corrected, correction = auto_tone(aged, estimator)
    before, after = psnr(_u8(aged), _u8(clean)), psnr(_u8(corrected), _u8(clean))
    assert correction.strength > 0.5 and correction.fade > 0.15
    assert after > before + 5, (before, after, correction)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "rocket", "coffee"])
def test_a_clean_photo_is_left_within_a_grey_level(estimator, name):
    clean = _photo(name)
    corrected, _ = auto_tone(clean, estimator)
    assert float((corrected - clean).abs().mean()) * 255 < 1.0


def test_a_sepia_print_stays_toned(estimator):
    toned = aging.sepia(aging.grayscale(_photo()), 1.0, 0.8)
    corrected, _ = auto_tone(toned, estimator)
    # Hue kept: the blue channel stays below the red one by about as much as in the toned print.
    gap_before = float((toned[0] - toned[2]).mean())
    gap_after = float((corrected[0] - corrected[2]).mean())
    assert gap_after > 0.6 * gap_before


def test_the_cap_limits_the_estimate(estimator):
    aged = _aged(_photo())
    capped = estimate(estimator, aged, cap=0.25)
    assert capped.strength <= 0.25 and capped.gate >= capped.strength


def test_a_broken_estimator_file_is_one_line(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ToneModelError) as info:
        load_estimator(bad)
    assert "\n" not in str(info.value)
    with pytest.raises(ToneModelError, match="not a tone estimator"):
        load_estimator(DEFAULT_TONE_ESTIMATOR.parent / "patina-restoration-small.safetensors")


def test_a_black_and_white_print_has_only_its_fade_undone(estimator):
    grey = aging.grayscale(_photo())
    toned = aging.sepia(grey, 1.0, 0.8)
    faded = aging.fade(toned, 0.35, [0.93, 0.88, 0.74])
    for print_ in (grey, toned, faded):
        correction = estimate(estimator, print_)
        assert not any(correction.dye) and not any(correction.yellow)  # no dyes, and its tone is kept
    corrected = correct(faded, estimate(estimator, faded))
    assert psnr(_u8(corrected), _u8(toned)) > psnr(_u8(faded), _u8(toned)) + 3  # the fade is undone
