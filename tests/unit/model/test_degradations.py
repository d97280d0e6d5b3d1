"""The synthetic old-photo degradation engine: API contract, determinism, defects and preset ordering."""

import json

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from model.degradation import aging, defects
from model.degradation.engine import (
    PRESETS,
    DegradationPlan,
    apply_plan,
    degrade,
    degrade_image,
    image_to_tensor,
    sample_plan,
    tensor_to_image,
)

SEVERITIES = ["light", "medium", "heavy"]


@pytest.fixture(scope="module")
def photo256() -> torch.Tensor:
    """skimage's astronaut at 256x256, (3, H, W) float32 in [0, 1]."""
    return image_to_tensor(
        Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS)
    )


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean().clamp_min(1e-10)))


def _check_triplet(degraded, target, mask, h, w):
    assert degraded.shape == target.shape == (3, h, w)
    assert mask.shape == (1, h, w)
    for t in (degraded, target, mask):
        assert t.dtype == torch.float32
        assert t.device.type == "cpu"
        assert torch.isfinite(t).all()
    assert degraded.min() >= 0 and degraded.max() <= 1
    assert target.min() >= 0 and target.max() <= 1
    assert set(mask.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("severity", SEVERITIES)
def test_same_seed_gives_same_plan_and_bytes(photo256, severity):
    h, w = photo256.shape[1:]
    assert sample_plan(np.random.default_rng(7), h, w, severity).to_json() == (
        sample_plan(np.random.default_rng(7), h, w, severity).to_json()
    )
    first, second = degrade(photo256, severity, seed=7), degrade(photo256, severity, seed=7)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)


def test_different_seeds_give_different_outputs(photo256):
    outputs = [degrade(photo256, "medium", seed)[0] for seed in range(4)]
    for i in range(len(outputs)):
        for j in range(i + 1, len(outputs)):
            assert not torch.equal(outputs[i], outputs[j])


@pytest.mark.parametrize("severity", SEVERITIES)
@pytest.mark.parametrize("size", [(97, 131), (16, 16), (131, 97), (2, 40)])
def test_presets_on_odd_sizes(severity, size):
    h, w = size
    gen = torch.Generator().manual_seed(h * 1000 + w)
    clean = torch.rand((3, h, w), generator=gen)
    for seed in range(6):
        _check_triplet(*degrade(clean, severity, seed), h, w)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "LA", "CMYK", "I;16"])
def test_degrade_image_accepts_any_mode(mode):
    base = Image.fromarray(skimage.data.chelsea()).resize((61, 47))
    image = base.convert("I;16") if mode == "I;16" else base.convert(mode)
    degraded, target, mask = degrade_image(image, "heavy", seed=3)
    assert (degraded.mode, target.mode, mask.mode) == ("RGB", "RGB", "L")
    assert degraded.size == target.size == mask.size == (61, 47)
    assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}


def test_image_tensor_round_trip():
    rgb = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    t = image_to_tensor(Image.fromarray(rgb))
    assert t.shape == (3, 9, 7) and t.dtype == torch.float32
    assert np.array_equal(np.asarray(tensor_to_image(t)), rgb)
    sixteen = Image.fromarray(np.array([[0, 65535]], dtype=np.uint16))
    assert image_to_tensor(sixteen)[:, 0, 1].tolist() == [1.0, 1.0, 1.0]
    gray = tensor_to_image(torch.tensor([[[0.0, 0.5, 2.0]]]))
    assert gray.mode == "L" and np.asarray(gray).tolist() == [[0, 128, 255]]


_DEFECT_CASES = {
    "scratches": (
        defects.add_scratches,
        {
            "strokes": [
                {"points": [[20, 30], [120, 60], [200, 200]], "widths": [2, 3, 2], "opacities": [1, 0.8, 1],
                 "bright": True},
                {"points": [[60, 0], [62, 128], [61, 255]], "widths": [1.5], "opacities": [0.9, 0, 0.9],
                 "bright": False},
            ],
            "bright_color": [0.95, 0.94, 0.9],
            "dark_color": [0.05, 0.05, 0.04],
        },
    ),
    "dust": (
        defects.add_dust,
        {
            "count": 80, "radius": [0.5, 3.0], "bright_fraction": 0.5, "seed": 1,
            "hairs": [{"points": [[100, 100], [110, 104], [115, 115], [112, 125]], "widths": [1.2],
                       "opacities": [1.0], "bright": False}],
            "bright_color": [0.95, 0.94, 0.9], "dark_color": [0.05, 0.05, 0.04],
        },
    ),
    "creases": (
        defects.add_creases,
        {
            "creases": [{"x": 128, "y": 128, "angle": 0.3, "wobble": [[1.0, 200.0, 0.0]], "width": 4.0,
                         "shade": 0.2, "shift": 1.0, "crack_width": 2.0, "crack_opacity": 0.9,
                         "crack_cover": 0.8}],
            "seed": 2,
        },
    ),
    "tears": (
        defects.add_tears,
        {
            "tears": [{"x": 0, "y": 0, "radius": 60, "harmonics": [[0.1, 0.0], [0.05, 1.0]], "jag": 2.0,
                       "fibre": 3.0, "fill": [0.05, 0.05, 0.05]}],
            "seed": 3,
        },
    ),
    "stains": (
        defects.add_stains,
        {
            "stains": [{"x": 150, "y": 100, "radius": 50, "harmonics": [[0.1, 0.5]], "softness": 5.0,
                        "tint": [0.85, 0.7, 0.45], "strength": 0.8, "rings": [1.0, 0.8], "ring": 4.0,
                        "ring_strength": 0.8}],
            "seed": 4,
        },
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_DEFECT_CASES))
def test_defect_changes_pixels_inside_its_mask(photo256, name):
    fn, params = _DEFECT_CASES[name]
    out, mask = fn(photo256, **params)
    assert out.shape == photo256.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert mask.shape == (1, 256, 256) and set(mask.unique().tolist()) <= {0.0, 1.0}
    inside = mask[0] > 0
    assert 0 < inside.float().mean() < 0.5
    diff = (out - photo256).abs().mean(0)
    assert diff[inside].mean() > 5 * diff[~inside].mean() + 1e-3
    again, mask_again = fn(photo256.clone(), **params)  # deterministic, input untouched
    assert torch.equal(again, out) and torch.equal(mask_again, mask)


def test_heavier_presets_degrade_more(photo256):
    seeds = range(8)
    mean_psnr = {
        s: np.mean([_psnr(degrade(photo256, s, seed)[0], photo256) for seed in seeds]) for s in SEVERITIES
    }
    assert mean_psnr["light"] > mean_psnr["medium"] > mean_psnr["heavy"], mean_psnr


def test_heavier_presets_damage_more(photo256):
    seeds = range(8)
    coverage = {
        s: np.mean([degrade(photo256, s, seed)[2].mean().item() for seed in seeds]) for s in SEVERITIES
    }
    assert coverage["light"] < coverage["medium"] < coverage["heavy"], coverage


def test_grayscale_op_makes_the_target_grayscale(photo256):
    h, w = photo256.shape[1:]
    seed = next(
        s
        for s in range(1000)
        if "grayscale" in [n for n, _ in sample_plan(np.random.default_rng(s), h, w, "heavy").ops]
    )
    degraded, target, _ = degrade(photo256, "heavy", seed)
    assert torch.equal(target, aging.grayscale(photo256))
    assert torch.equal(target[0], target[1]) and torch.equal(target[1], target[2])
    only_gray = DegradationPlan(height=h, width=w, severity="custom", ops=(("grayscale", {}),))
    degraded, target, mask = apply_plan(photo256, only_gray)
    assert torch.equal(degraded, target) and not mask.any()


def test_colour_casts_are_not_in_the_target(photo256):
    h, w = photo256.shape[1:]
    casts = (
        ("sepia", {"strength": 0.8, "warmth": 0.7}),
        ("dye_fade", {"cyan": 0.5, "magenta": 0.1, "yellow": 0.2}),
    )
    plan = DegradationPlan(height=h, width=w, severity="custom", ops=casts)
    degraded, target, _ = apply_plan(photo256, plan)
    assert torch.equal(target, photo256) and not torch.equal(degraded, photo256)


def test_unknown_severity_raises_naming_the_choices(photo256):
    with pytest.raises(ValueError, match=r"light.*medium"):
        sample_plan(np.random.default_rng(0), 10, 10, "catastrophic")
    with pytest.raises(ValueError, match="heavy"):
        degrade(photo256, "extreme")


def test_plan_is_plain_json_and_leaves_global_rngs_alone(photo256):
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    plan = sample_plan(np.random.default_rng(11), 256, 256, "heavy")
    assert json.loads(json.dumps(json.loads(plan.to_json()))) == json.loads(plan.to_json())
    assert DegradationPlan.from_json(plan.to_json()) == plan
    apply_plan(photo256, plan)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)


def test_apply_plan_is_deterministic_and_pure(photo256):
    plan = sample_plan(np.random.default_rng(5), 256, 256, "heavy")
    copy = photo256.clone()
    first, second = apply_plan(copy, plan), apply_plan(copy, plan)
    assert torch.equal(copy, photo256)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="256x256"):
        apply_plan(photo256[:, :100], plan)


def test_plans_follow_print_physics_and_reach_every_op():
    stage = {
        "gaussian_blur": 0, "motion_blur": 0, "defocus_blur": 0, "film_grain": 0,
        "grayscale": 1, "dye_fade": 1, "sepia": 1, "yellowing": 1, "fade": 1, "vignette": 1,
        "uneven_exposure": 1,
        "stains": 2, "creases": 2, "scratches": 2, "cracks": 2, "tears": 2, "dust": 2,
        "resize": 3, "gaussian_noise": 3, "speckle_noise": 3, "poisson_noise": 3, "salt_and_pepper": 3,
        "halftone": 3, "jpeg": 4,
    }  # fmt: skip
    seen = set()
    for severity in SEVERITIES:
        for seed in range(300):
            names = [n for n, _ in sample_plan(np.random.default_rng(seed), 300, 200, severity).ops]
            assert [stage[n] for n in names] == sorted(stage[n] for n in names), names
            assert len(names) == len(set(names))
            seen.update(names)
    assert seen == set(stage)


def test_presets_are_ordered_by_probability():
    for field in ("scratches", "cracks", "dust", "creases", "tears", "stains", "fade", "noise", "blur"):
        values = [getattr(PRESETS[s], field).p for s in SEVERITIES]
        assert values == sorted(values), field


def test_mask_is_not_changed_by_later_unstructured_ops(photo256):
    h, w = photo256.shape[1:]
    scratch = ("scratches", _DEFECT_CASES["scratches"][1])
    alone = apply_plan(photo256, DegradationPlan(h, w, "custom", (scratch,)))
    blur, jpeg = ("gaussian_blur", {"sigma": 2.0}), ("jpeg", {"quality": 40, "subsampling": 2})
    later = apply_plan(photo256, DegradationPlan(h, w, "custom", (scratch, blur, jpeg)))
    assert torch.equal(alone[2], later[2])
    assert not torch.equal(alone[0], later[0])


def test_every_seeded_op_draws_another_field_for_another_seed():
    # An op that ignored its seed (one noise field for every image) would pass same-seed determinism tests;
    # here every op that takes a seed, found in real plans, is run with two seeds on the same photo.
    clean = torch.rand(3, 96, 96, generator=torch.Generator().manual_seed(0)) * 0.6 + 0.2
    seeded: dict[str, dict] = {}
    for k in range(200):
        plan = sample_plan(np.random.default_rng(k), 96, 96, "heavy")
        for name, params in plan.ops:
            if "seed" in params:
                seeded.setdefault(name, params)
    assert {"film_grain", "gaussian_noise", "stains", "creases", "tears"} <= set(seeded)
    for name, params in seeded.items():
        runs = [
            apply_plan(clean, DegradationPlan(96, 96, "t", ((name, {**params, "seed": s}),)))[0]
            for s in (params["seed"], params["seed"], params["seed"] + 1)
        ]
        assert torch.equal(runs[0], runs[1]), name  # same seed: same bytes
        assert not torch.equal(runs[0], runs[2]), name  # another seed: another field
