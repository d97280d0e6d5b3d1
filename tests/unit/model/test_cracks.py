"""The emulsion-crack op and the defect mask: seeded, its mask is the pixels it changed, and the mask of a
plan is the union of every defect's."""

from __future__ import annotations

import numpy as np
import skimage.data
import torch
from PIL import Image

from model.degradation.engine import DegradationPlan, apply_plan, image_to_tensor, sample_plan
from model.degradation.mixture import sample_training_plan
from model.degradation.shapes import _crack_network, _scratch


def _clean(side: int = 192) -> torch.Tensor:
    return image_to_tensor(Image.fromarray(skimage.data.astronaut()).resize((side, side)))


def _cracks(seed: int, side: int = 192) -> DegradationPlan:
    rng = np.random.default_rng(seed)
    networks = [_crack_network(rng, side, side, 1.0) for _ in range(2)]
    return DegradationPlan(side, side, "test", (("cracks", {"networks": networks}),))


def test_crack_networks_are_seeded_and_branch():
    first, again, other = _cracks(3), _cracks(3), _cracks(4)
    assert first.to_json() == again.to_json()
    assert first.to_json() != other.to_json()
    strokes = first.ops[0][1]["networks"][0]["strokes"]
    assert len(strokes) > 1  # roots and their forks, not one line
    clean = _clean()
    assert torch.equal(apply_plan(clean, first)[0], apply_plan(clean, again)[0])
    assert not torch.equal(apply_plan(clean, first)[0], apply_plan(clean, other)[0])


def test_the_crack_mask_is_the_pixels_the_cracks_changed():
    clean = _clean()
    for seed in range(4):
        degraded, target, mask = apply_plan(clean, _cracks(seed))
        assert torch.equal(target, clean)
        change = (degraded - clean).abs().amax(0)
        inside = mask[0] > 0
        assert 0.001 < inside.float().mean() < 0.3
        # every pixel the crack visibly changed is in the mask, and outside it the image is barely touched
        assert inside[change > 0.12].all()
        assert change[~inside].max() < 0.12
        assert change[inside].mean() > 0.1


def test_the_defect_mask_is_the_union_of_every_defect():
    side = 160
    rng = np.random.default_rng(7)
    scratches = ("scratches", {"strokes": [_scratch(rng, side, side, 1.0) for _ in range(4)],
                               "bright_color": [1.0, 1.0, 1.0], "dark_color": [0.0, 0.0, 0.0]})  # fmt: skip
    cracks = _cracks(1, side).ops[0]
    clean = _clean(side)
    masks = [apply_plan(clean, DegradationPlan(side, side, "t", ops))[2] for ops in ((scratches,), (cracks,))]
    _, _, both = apply_plan(clean, DegradationPlan(side, side, "t", (scratches, cracks)))
    assert torch.equal(both, torch.maximum(*masks))
    assert both.sum() > max(m.sum() for m in masks)


def test_presets_and_the_local_mixture_draw_cracks_and_keep_tone():
    plans = [sample_plan(np.random.default_rng(s), 256, 256, "heavy") for s in range(20)]
    assert sum(any(name == "cracks" for name, _ in p.ops) for p in plans) >= 8
    tone_ops = {"dye_fade", "sepia", "yellowing", "fade", "vignette", "uneven_exposure"}
    local = [sample_training_plan(np.random.default_rng(s), 128, 128, "local") for s in range(200)]
    assert not any(name in tone_ops for p in local for name, _ in p.ops)  # local repair keeps tone
    assert sum(any(name == "cracks" for name, _ in p.ops) for p in local) > 60
    assert 10 <= sum(not p.ops for p in local) <= 45  # identity pairs: ~12%


def test_gaussian_noise_follows_its_seed():
    from model.degradation.artifacts import gaussian_noise

    clean = _clean(64)
    one, same, other = (gaussian_noise(clean, sigma=0.1, gray=False, seed=s) for s in (1, 1, 2))
    assert torch.equal(one, same)
    assert not torch.equal(one, other)
