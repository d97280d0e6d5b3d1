"""The period-print renderer and its era presets (model/retro/)."""

import json

import numpy as np
import pytest
import skimage.data
import torch
import torch.nn.functional as F
from PIL import Image

from model.retro.eras import ERAS, era
from model.retro.params import RetroParams
from model.retro.render import render
from model.retro.spectral import exposure_weights


@pytest.fixture(scope="module")
def coffee() -> torch.Tensor:
    photo = np.asarray(Image.fromarray(skimage.data.coffee()).resize((512, 384), Image.Resampling.LANCZOS))
    return torch.from_numpy(photo.copy()).permute(2, 0, 1).float() / 255


def _flat(rgb, size=(64, 64)) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32)[:, None, None].expand(3, *size).clone()


def _plain(**changes) -> RetroParams:
    """No grain, blur, vignette or wear: only what a test changes."""
    return RetroParams(**changes)


def test_there_are_six_eras_and_a_bad_name_lists_them():
    assert len(ERAS) >= 6
    with pytest.raises(ValueError, match="unknown era '1700s'; choose one of") as info:
        era("1700s")
    assert all(name in str(info.value) for name in ERAS)


@pytest.mark.parametrize("name", sorted(ERAS))
def test_eras_are_deterministic_and_json_round_trips(name, coffee):
    params = era(name)
    assert RetroParams.from_json(params.to_json()) == params
    json.loads(params.to_json())  # plain JSON a person can read and edit
    first, again = render(coffee, params, seed=5), render(coffee, params, seed=5)
    assert torch.equal(first, again)
    assert first.shape == coffee.shape and first.min() >= 0 and first.max() <= 1
    assert (first - coffee).abs().mean() > 0.03  # the look is really applied


@pytest.mark.parametrize("name", sorted(ERAS))
def test_a_larger_scan_gets_the_same_look(name, coffee):
    # Sizes are physical: render at 512 px and shrink by 2, or render at 256 px, and the prints agree
    # (grain, blur, halation, vignetting and paper are fixed to the negative and the print, not to pixels).
    # Measured: 0.3-1.2 grey levels mean.
    small = F.avg_pool2d(coffee[None], 2)[0]
    shrunk = F.avg_pool2d(render(coffee, era(name), seed=3)[None], 2)[0]
    assert (shrunk - render(small, era(name), seed=3)).abs().mean() * 255 < 2.0


def test_seeds_change_the_grain_not_the_look():
    grey = _flat((0.4, 0.4, 0.4), (128, 128))
    a, b = (render(grey, _plain(grain=15), seed=s) for s in (1, 2))
    assert not torch.equal(a, b)
    assert abs(a.mean() - b.mean()) < 0.01


def test_grain_follows_granularity():
    grey = _flat((0.4, 0.4, 0.4), (256, 256))
    stds = [render(grey, _plain(grain=g, format_mm=36), seed=0)[1].std().item() for g in (0, 8, 20)]
    assert stds[0] < 1e-6 < stds[1] < stds[2]
    # A larger negative (less enlargement) shows less grain on the same print.
    assert render(grey, _plain(grain=20, format_mm=127), seed=0)[1].std() < stds[2]


def test_spectral_sensitivity_decides_how_red_and_blue_print():
    # A blue-sensitive plate barely sees red: red lips and a red dress print near black while a blue sky
    # prints light. Orthochromatic adds green, panchromatic adds red: the red prints lighter class by class.
    red, blue = _flat((0.8, 0.1, 0.1)), _flat((0.1, 0.2, 0.8))
    gaps = []
    for kind in ("blue", "ortho", "pan"):
        params = _plain(sensitivity=kind)
        gaps.append((render(blue, params).mean() - render(red, params).mean()).item())
    assert gaps[0] > 0.3 and gaps[0] > gaps[1] > gaps[2]


def test_exposure_weights_come_from_the_spectra():
    blue, ortho, pan = (exposure_weights(k) for k in ("blue", "ortho", "pan"))
    for w in (blue, ortho, pan):
        assert sum(w) == pytest.approx(1.0)
    assert blue[2] > 0.7  # mostly blue
    assert ortho[1] > blue[1] and ortho[0] < 0.1  # adds green, still blind to red
    assert pan[0] > 0.15  # sees red


def test_black_and_white_is_monochrome_and_toning_warms_it():
    photo = _flat((0.7, 0.3, 0.2))
    neutral = render(photo, _plain(paper_tint=(0.9, 0.9, 0.9)))
    assert torch.allclose(neutral[0], neutral[1], atol=1e-5) and torch.allclose(
        neutral[1], neutral[2], atol=1e-5
    )
    sepia = render(photo, _plain(paper_tint=(0.9, 0.9, 0.9), tone=(0.72, 0.95, 1.3))).mean((1, 2))
    assert sepia[0] > sepia[1] > sepia[2]


def test_faded_colour_drifts_to_red_magenta_and_instant_heat_goes_warm():
    grey = _flat((0.45, 0.45, 0.45))
    fresh = render(grey, _plain(sensitivity="colour", paper_tint=(0.9, 0.9, 0.9))).mean((1, 2))
    assert (fresh.max() - fresh.min()) < 0.01  # a neutral prints neutral
    faded = render(grey, _plain(sensitivity="colour", paper_tint=(0.9, 0.9, 0.9), dye_fade=(0.45, 0.1, 0.35)))
    r, g, b = faded.mean((1, 2))
    assert r > g + 0.03 and b > g  # cyan and yellow gone: red and blue left over, magenta-red
    r, g, b = render(grey, era("1980s-instant")).mean((1, 2))
    assert r > b + 0.03


def test_vignetting_darkens_the_corners_by_cos4():
    grey = _flat((0.5, 0.5, 0.5), (200, 300))
    out = render(grey, _plain(vignette=30))[1]
    assert out[100, 150] > out[0, 0] + 0.05 and out[100, 150] > out[199, 299] + 0.05


def test_hand_tinting_colours_a_black_and_white_print_by_region():
    photo = torch.cat([_flat((0.8, 0.3, 0.3), (64, 32)), _flat((0.3, 0.4, 0.8), (64, 32))], dim=2)
    out = render(photo, _plain(sensitivity="pan", hand_tint=0.6, paper_tint=(0.9, 0.9, 0.9)))
    left, right = out[:, :, :16].mean((1, 2)), out[:, :, -16:].mean((1, 2))
    assert left[0] > left[2] and right[2] > right[0]


@pytest.mark.parametrize("shape", [(3, 1, 7), (3, 5, 5), (3, 2, 1)])
def test_tiny_images_render(shape):
    for params in ERAS.values():
        out = render(torch.rand(*shape), params)
        assert out.shape == shape and torch.isfinite(out).all()


def test_bad_parameters_fail_with_the_reason():
    with pytest.raises(ValueError, match="unknown sensitivity 'infrared'"):
        RetroParams(sensitivity="infrared")
    with pytest.raises(ValueError, match=r"unknown retro parameters \['colour_temp'\]"):
        RetroParams.from_dict({"colour_temp": 3})
    with pytest.raises(ValueError, match="hand_tint must be in"):
        RetroParams(hand_tint=2)


def test_grain_strength_follows_selwyn_at_every_size():
    # sigma x sqrt(area) is constant: a render at twice the size, averaged back down, has the grain of the
    # render at the small size, on either side of the 48 um cell size (here 750 cells across 36 mm).
    params = _plain(grain=15, format_mm=36)
    for side in (300, 700, 900):
        small = render(_flat((0.4, 0.4, 0.4), (side * 2 // 3, side)), params, seed=0)[1].std()
        large = render(_flat((0.4, 0.4, 0.4), (side * 4 // 3, side * 2)), params, seed=1)
        shrunk = F.avg_pool2d(large[None], 2)[0][1].std()
        assert abs(shrunk / small - 1) < 0.12, (side, float(small), float(shrunk))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"print_exposure": NaN}', "print_exposure must be finite"),
        ('{"tone": 3}', "tone must be three numbers"),
        ('{"grain": true}', "grain must be a number"),
        ('{"grain": -1}', "must not be negative"),
        ("[1]", "must be a JSON object"),
        ("nope", "not valid JSON"),
    ],
)
def test_hand_edited_parameters_fail_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        RetroParams.from_json(text)


def test_handling_wear_is_specks_and_short_faint_scratches_never_a_long_one():
    import dataclasses
    import itertools
    import math

    from model.degradation.engine import handling_wear

    assert handling_wear(np.random.default_rng(0), 600, 800, 0.0) == []
    longest = 0.0
    for seed in range(60):
        ops = handling_wear(np.random.default_rng(seed), 600, 800, 1.0)
        assert {name for name, _ in ops} <= {"dust", "scratches"}  # no stains, creases, cracks or tears
        for _, params in ops:
            for stroke in params.get("strokes", []):
                points = stroke["points"]
                length = sum(math.dist(a, b) for a, b in itertools.pairwise(points))
                longest = max(longest, length)
    assert 0 < longest <= 0.13 * 600  # the short side: never across the print
    # --wear 0 renders the era's print with no wear at all: the same bytes as a look without any.
    photo = torch.from_numpy(skimage.data.astronaut()[::4, ::4].copy()).permute(2, 0, 1).float() / 255
    look = era(next(iter(ERAS)))
    clean = render(photo, dataclasses.replace(look, wear=0.0), seed=3)
    worn = render(photo, dataclasses.replace(look, wear=1.0), seed=3)
    assert not torch.equal(clean, worn)
    assert torch.equal(clean, render(photo, dataclasses.replace(look, wear=0.0), seed=3))
