"""Synthetic old-photo degradation: a clean photo in, a (degraded, clean target, defect mask) pair out.

Sampling and application are separate. ``sample_plan`` draws everything from an explicit
``numpy.random.Generator`` into a ``DegradationPlan``: an ordered list of (op name, params) of plain Python
values, JSON-serialisable, with geometry already in pixels for the plan's size. ``apply_plan`` is
deterministic given the plan; ops that need per-pixel random fields carry an integer ``seed`` for a
``torch.Generator`` on the image's device. Same seed, same device: same bytes.

The plan follows the life of a print: capture (blur, film grain; shuffled) -> print aging (grayscale, dye
fade, tone, fading, vignetting, uneven exposure) -> physical damage (stains, creases, scratches, tears, dust)
-> reproduction (resampling, noise, halftone; shuffled) -> JPEG. Sizes are relative to min(H, W) (anchored
at a 512 px image) so small and large images both look plausible.

Images are float32 tensors (3, H, W) in [0, 1] on any device; masks are float32 (1, H, W) in {0, 1}: the
union of pixels damaged by the structured defects (see ``model.degradation.defects.MASK_THRESHOLD``).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from model.degradation import aging, artifacts, defects
from model.degradation.shapes import (
    _crack_network,
    _crease,
    _dark,
    _hair,
    _paper,
    _r,
    _scratch,
    _stain,
    _tear,
    fine_scratch,
)


class Op(NamedTuple):
    """How likely a plan is to include an op, and the range its strength (or count) is drawn from."""

    p: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Severity:
    """One preset: an ``Op`` per degradation. Pixel sizes are for a 512 px image (see ``sample_plan``)."""

    blur: Op  # Gaussian sigma px; motion blur is 3x as long, defocus radius 1x
    grain: Op  # std at mid-grey
    grayscale: float  # probability of a black-and-white print
    dye_fade: Op  # density fraction lost by the cyan dye; magenta and yellow lose less
    tone: Op  # sepia or yellowing strength
    fade: Op
    vignette: Op
    uneven: Op  # std of the log exposure gain
    stains: Op  # counts, for the damage ops
    creases: Op
    scratches: Op
    cracks: Op  # emulsion crack networks
    tears: Op
    dust: Op  # specks
    hairs: tuple[int, int]  # drawn along with the dust
    resize: Op  # down-sampling factor
    noise: Op  # Gaussian std in 8-bit levels; the other noise kinds are matched to it
    halftone: float  # probability
    jpeg: Op  # quality


PRESETS: dict[str, Severity] = {
    "light": Severity(
        blur=Op(0.5, 0.3, 1.2), grain=Op(0.5, 0.01, 0.035), grayscale=0.05, dye_fade=Op(0.25, 0.05, 0.2),
        tone=Op(0.3, 0.1, 0.3), fade=Op(0.5, 0.05, 0.2), vignette=Op(0.3, 0.1, 0.3),
        uneven=Op(0.3, 0.03, 0.1),
        stains=Op(0.1, 1, 1), creases=Op(0.05, 1, 1), scratches=Op(0.5, 1, 3),
        cracks=Op(0.2, 1, 1), tears=Op(0.02, 1, 1),
        dust=Op(0.6, 3, 25), hairs=(0, 1),
        resize=Op(0.4, 0.75, 1.0), noise=Op(0.4, 2, 8), halftone=0.02, jpeg=Op(0.5, 60, 95),
    ),
    "medium": Severity(
        blur=Op(0.7, 0.5, 2.0), grain=Op(0.7, 0.02, 0.06), grayscale=0.12, dye_fade=Op(0.4, 0.1, 0.4),
        tone=Op(0.5, 0.2, 0.6), fade=Op(0.7, 0.1, 0.4), vignette=Op(0.5, 0.15, 0.45),
        uneven=Op(0.5, 0.05, 0.2),
        stains=Op(0.35, 1, 2), creases=Op(0.3, 1, 2), scratches=Op(0.75, 2, 10),
        cracks=Op(0.45, 1, 2), tears=Op(0.15, 1, 1),
        dust=Op(0.75, 15, 100), hairs=(0, 3),
        resize=Op(0.7, 0.5, 1.0), noise=Op(0.7, 4, 20), halftone=0.05, jpeg=Op(0.7, 40, 90),
    ),
    "heavy": Severity(
        blur=Op(0.8, 1.0, 3.0), grain=Op(0.8, 0.04, 0.1), grayscale=0.15, dye_fade=Op(0.5, 0.25, 0.6),
        tone=Op(0.7, 0.4, 0.9), fade=Op(0.9, 0.3, 0.6), vignette=Op(0.6, 0.25, 0.6),
        uneven=Op(0.7, 0.1, 0.35),
        stains=Op(0.6, 1, 4), creases=Op(0.6, 1, 3), scratches=Op(0.95, 8, 30),
        cracks=Op(0.7, 1, 4), tears=Op(0.5, 1, 2),
        dust=Op(0.9, 60, 300), hairs=(1, 6),
        resize=Op(0.8, 0.35, 0.8), noise=Op(0.8, 8, 35), halftone=0.08, jpeg=Op(0.85, 30, 75),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class DegradationPlan:
    """What to do to one image of size (height, width): ``ops`` are (name, params) in application order."""

    height: int
    width: int
    severity: str
    ops: tuple[tuple[str, dict], ...]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DegradationPlan:
        data = json.loads(text)
        ops = tuple((name, params) for name, params in data.pop("ops"))
        return cls(ops=ops, **data)


# Op name -> function(image, **params); the structured defects are defects.add_<name> and also return a mask.
_DEFECTS = ("stains", "creases", "scratches", "cracks", "tears", "dust")
_AGING = ("grayscale", "dye_fade", "sepia", "yellowing", "fade", "vignette", "uneven_exposure")
_CAPTURE = ("gaussian_blur", "motion_blur", "defocus_blur", "film_grain")  # the camera and the film
_SCAN = ("resize", "gaussian_noise", "speckle_noise", "poisson_noise", "salt_and_pepper", "halftone", "jpeg")
_ARTIFACTS = _CAPTURE + _SCAN
_OPS: dict[str, Callable] = {
    **{n: getattr(aging, n) for n in _AGING},
    **{n: getattr(defects, f"add_{n}") for n in _DEFECTS},
    **{n: getattr(artifacts, n) for n in _ARTIFACTS},
}


def _op(name: str, **params) -> tuple[str, dict]:
    """One plan step: (op name, its parameters)."""
    return name, params


def _u(rng: np.random.Generator, op: Op) -> float:
    return float(rng.uniform(op.lo, op.hi))


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


def _capture(rng, sev: Severity, blur: float) -> list:
    ops = []
    if rng.random() < sev.blur.p:
        sigma = _u(rng, sev.blur) * blur
        kind = rng.choice(["gaussian", "motion", "defocus"], p=[0.5, 0.2, 0.3])
        if kind == "gaussian":
            ops.append(_op("gaussian_blur", sigma=_r(sigma)))
        elif kind == "motion":
            ops.append(_op("motion_blur", length=_r(3 * sigma), angle=_r(rng.uniform(0, math.pi))))
        else:
            ops.append(_op("defocus_blur", radius=_r(sigma)))
    if rng.random() < sev.grain.p:
        grain = {"strength": _r(_u(rng, sev.grain)), "size": _r(rng.uniform(0.4, 1.0) * math.sqrt(blur))}
        ops.append(_op("film_grain", **grain, mono=_r(rng.uniform(0.6, 1.0)), seed=_seed(rng)))
    rng.shuffle(ops)
    return ops


def _aging(rng, sev: Severity) -> list:
    ops = []
    gray = rng.random() < sev.grayscale
    if gray:
        ops.append(_op("grayscale"))
    if not gray and rng.random() < sev.dye_fade.p:  # B&W prints have no dyes to fade
        cyan = _u(rng, sev.dye_fade)
        ops.append(
            _op(
                "dye_fade",
                cyan=_r(cyan),
                magenta=_r(cyan * rng.uniform(0, 0.6)),
                yellow=_r(cyan * rng.uniform(0, 0.8)),
            )
        )
    if rng.random() < sev.tone.p:
        strength = _r(_u(rng, sev.tone))
        if gray or rng.random() < 0.4:
            ops.append(_op("sepia", strength=strength, warmth=_r(rng.uniform(0.3, 1.0))))
        else:
            tint = [1.0, _r(rng.uniform(0.85, 0.97)), _r(rng.uniform(0.55, 0.85))]
            ops.append(_op("yellowing", strength=strength, tint=tint))
    if rng.random() < sev.fade.p:
        ops.append(
            _op(
                "fade",
                amount=_r(_u(rng, sev.fade)),
                level=_paper(rng) if rng.random() < 0.7 else [_r(rng.uniform(0.55, 0.75))] * 3,
            )
        )
    if rng.random() < sev.vignette.p:
        ops.append(
            _op(
                "vignette",
                strength=_r(_u(rng, sev.vignette)),
                radius=_r(rng.uniform(0.5, 1.0)),
                softness=_r(rng.uniform(0.3, 0.8)),
                cx=_r(rng.normal(0, 0.08)),
                cy=_r(rng.normal(0, 0.08)),
            )
        )
    if rng.random() < sev.uneven.p:
        ops.append(
            _op(
                "uneven_exposure",
                strength=_r(_u(rng, sev.uneven)),
                cells=int(rng.integers(1, 4)),
                seed=_seed(rng),
            )
        )
    return ops


def handling_wear(rng: np.random.Generator, height: int, width: int, amount: float) -> list:
    """Ops for the light wear of a print kept and handled (``amount`` 0..1; 0 = none): a few specks of dust,
    rarely a hair, and a few short faint scratches. No stains, creases, cracks, tears or long scratches:
    those are damage, and a period look is not a damaged photo (docs/RETRO.md)."""
    if amount <= 0:
        return []
    s = max(height, width) / 512
    lo = max(0.3, 0.4 * s)
    ops = [
        _op(
            "dust",
            count=max(1, round(amount * rng.uniform(3, 25))),
            radius=[_r(lo), _r(max(1.5 * lo, rng.uniform(1.2, 2.5) * s))],
            bright_fraction=_r(rng.uniform(0.2, 0.8)),
            hairs=[_hair(rng, height, width, s) for _ in range(int(rng.random() < 0.3 * amount))],
            bright_color=_paper(rng),
            dark_color=_dark(rng),
            seed=_seed(rng),
        )
    ]
    strokes = [fine_scratch(rng, height, width, s) for _ in range(int(rng.binomial(3, 0.6 * amount)))]
    if strokes:
        ops.append(_op("scratches", strokes=strokes, bright_color=_paper(rng), dark_color=_dark(rng)))
    return ops


def _count(rng, lo: float, hi: float) -> int:
    return int(rng.integers(lo, hi + 1))


def _items(rng, op: Op, make: Callable, h: int, w: int, s: float) -> list[dict]:
    return [make(rng, h, w, s) for _ in range(_count(rng, op.lo, op.hi))]


def _damage(rng, sev: Severity, h: int, w: int, s: float) -> list:
    ops = []
    if rng.random() < sev.stains.p:
        ops.append(_op("stains", stains=_items(rng, sev.stains, _stain, h, w, s), seed=_seed(rng)))
    if rng.random() < sev.creases.p:
        ops.append(_op("creases", creases=_items(rng, sev.creases, _crease, h, w, s), seed=_seed(rng)))
    if rng.random() < sev.scratches.p:
        strokes = _items(rng, sev.scratches, _scratch, h, w, s)
        ops.append(_op("scratches", strokes=strokes, bright_color=_paper(rng), dark_color=_dark(rng)))
    if rng.random() < sev.cracks.p:
        ops.append(_op("cracks", networks=_items(rng, sev.cracks, _crack_network, h, w, s)))
    if rng.random() < sev.tears.p:
        ops.append(_op("tears", tears=_items(rng, sev.tears, _tear, h, w, s), seed=_seed(rng)))
    if rng.random() < sev.dust.p:
        lo = max(0.3, 0.4 * s)
        ops.append(
            _op(
                "dust",
                count=_count(rng, sev.dust.lo, sev.dust.hi),
                radius=[_r(lo), _r(max(1.5 * lo, rng.uniform(1.5, 3.5) * s))],
                bright_fraction=_r(rng.uniform(0.2, 0.8)),
                hairs=[_hair(rng, h, w, s) for _ in range(_count(rng, *sev.hairs))],
                bright_color=_paper(rng),
                dark_color=_dark(rng),
                seed=_seed(rng),
            )
        )
    return ops


def _scan(rng, sev: Severity, blur: float) -> list:
    ops = []
    if rng.random() < sev.resize.p:
        modes = ["area", "bilinear", "bicubic"]
        ops.append(
            _op(
                "resize",
                scale=_r(_u(rng, sev.resize)),
                down=str(rng.choice(modes)),
                up=str(rng.choice(modes[1:])),
            )
        )
    if rng.random() < sev.noise.p:
        sigma = _u(rng, sev.noise) / 255
        kind = rng.choice(["gaussian", "poisson", "speckle", "salt"], p=[0.45, 0.25, 0.2, 0.1])
        if kind == "gaussian":
            gray = bool(rng.random() < 0.4)  # luminance-only noise, as from a monochrome sensor or film
            ops.append(_op("gaussian_noise", sigma=_r(sigma), gray=gray, seed=_seed(rng)))
        elif kind == "poisson":  # photons at white such that mid-grey has the same std as the Gaussian
            ops.append(_op("poisson_noise", photons=_r(0.5 / sigma**2), seed=_seed(rng)))
        elif kind == "speckle":
            ops.append(_op("speckle_noise", sigma=_r(2 * sigma), seed=_seed(rng)))
        else:
            ops.append(
                _op("salt_and_pepper", amount=_r(sigma / 20), salt=_r(rng.uniform(0.2, 0.8)), seed=_seed(rng))
            )
    if rng.random() < sev.halftone:
        base = rng.uniform(0, math.pi / 2)  # one screen angle (a monochrome plate) or colour rosettes
        angles = [_r(base + math.radians(o)) for o in ((0, 0, 0) if rng.random() < 0.5 else (15, 75, 0))]
        cell = _r(max(2.5, rng.uniform(3.0, 5.0) * blur))
        ops.append(_op("halftone", cell=cell, angles=angles, strength=_r(rng.uniform(0.4, 0.9))))
    rng.shuffle(ops)
    if rng.random() < sev.jpeg.p:  # always last: it is how the scan was saved
        ops.append(
            _op(
                "jpeg",
                quality=_count(rng, sev.jpeg.lo, sev.jpeg.hi),
                subsampling=int(rng.choice([0, 1, 2], p=[0.15, 0.15, 0.7])),
            )
        )
    return ops


def sample_plan(
    rng: np.random.Generator, height: int, width: int, severity: str = "medium", scale: float | None = None
) -> DegradationPlan:
    """Draw a plan for a (height, width) image from ``PRESETS[severity]``. Touches no torch state.

    ``scale`` overrides the size of defects, blur and grain relative to a 512 px photo (default
    min(H, W) / 512): a training crop can then carry the damage of a photo of any size."""
    if severity not in PRESETS:
        raise ValueError(f"unknown severity {severity!r}; choose one of {sorted(PRESETS)}")
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    sev = PRESETS[severity]
    s = min(height, width) / 512 if scale is None else scale
    blur = min(max(s, 0.5), 2.0)  # optics blur grows with resolution, but not in proportion on tiny crops
    ops = (
        _capture(rng, sev, blur)
        + _aging(rng, sev)
        + _damage(rng, sev, height, width, s)
        + _scan(rng, sev, blur)
    )
    return DegradationPlan(height=height, width=width, severity=severity, ops=tuple(ops))


def _check(image: torch.Tensor) -> None:
    if image.dim() != 3 or image.shape[0] != 3 or not image.is_floating_point():
        raise ValueError(f"expected a float (3, H, W) image, got {tuple(image.shape)} {image.dtype}")


def apply_plan(clean: torch.Tensor, plan: DegradationPlan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Degrade ``clean`` (3, H, W) float32 in [0, 1] by ``plan``; deterministic on a given device.

    Returns (degraded (3, H, W) in [0, 1], clean target (3, H, W) in [0, 1], defect mask (1, H, W) in {0, 1}),
    all float32 on ``clean``'s device. The target is ``clean`` unless the plan turns the photo black and
    white, then it is ``clean``'s grayscale: the model must not invent colours. Colour casts are not applied
    to the target, since restoring removes them.
    """
    _check(clean)
    if tuple(clean.shape[1:]) != (plan.height, plan.width):
        raise ValueError(
            f"plan is for {plan.height}x{plan.width}, image is {clean.shape[1]}x{clean.shape[2]}"
        )
    clean = clean.to(torch.float32)
    image, target = clean, clean
    mask = torch.zeros_like(clean[:1])
    for name, params in plan.ops:
        if name in _DEFECTS:
            image, damaged = _OPS[name](image, **params)
            mask = torch.maximum(mask, damaged)
        else:
            image = _OPS[name](image, **params)
        if name == "grayscale":
            target = aging.grayscale(clean)
    return image.clamp(0, 1), target, mask


def degrade(
    clean: torch.Tensor, severity: str = "medium", seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``apply_plan(clean, sample_plan(np.random.default_rng(seed), H, W, severity))``."""
    _check(clean)
    plan = sample_plan(np.random.default_rng(seed), clean.shape[1], clean.shape[2], severity)
    return apply_plan(clean, plan)


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """Any PIL image -> (3, H, W) float32 in [0, 1] on the CPU.

    16-bit and 32-bit integer modes ("I;16*", "I") are read as 16-bit (0..65535) gray, "F" as 0..255 gray;
    everything else goes through Pillow's RGB conversion, which drops alpha and maps palette, CMYK and gray.
    """
    if image.mode.startswith("I") or image.mode == "F":
        scale = 255.0 if image.mode == "F" else 65535.0
        gray = np.asarray(image, dtype=np.float32) / scale
        return torch.from_numpy(np.clip(gray, 0, 1)).expand(3, -1, -1).contiguous()
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous()


def tensor_to_image(t: torch.Tensor) -> Image.Image:
    """(3, H, W) -> RGB or (1, H, W) -> L, uint8 by rounding values clamped to [0, 1]."""
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected a (3, H, W) or (1, H, W) tensor, got {tuple(t.shape)}")
    array = (t.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return Image.fromarray(array[0] if t.shape[0] == 1 else array.transpose(1, 2, 0))


GREY_MODES = ("L", "LA", "I", "I;16", "1")


def like_source(out: Image.Image, source: Image.Image, keep_grey: bool = True) -> Image.Image:
    """``out`` (RGB or L, a processed copy of ``source``) in ``source``'s kind of mode: grayscale stays
    grayscale (unless ``keep_grey`` is False: a toned print of a grey scan is colour), and ``source``'s alpha
    is carried over untouched."""
    if keep_grey and source.mode in GREY_MODES and out.mode != "L":
        out = out.convert("L")
    if source.mode in ("RGBA", "LA", "PA") or (source.mode == "P" and "transparency" in source.info):
        alpha = source.convert("RGBA").getchannel("A")
        out = out.convert("LA" if out.mode == "L" else "RGBA")
        out.putalpha(alpha)
    return out


def degrade_image(
    image: Image.Image, severity: str = "medium", seed: int = 0
) -> tuple[Image.Image, Image.Image, Image.Image]:
    """PIL convenience: any mode in -> (degraded RGB, clean target RGB, defect mask "L" with 0/255)."""
    degraded, target, mask = degrade(image_to_tensor(image), severity, seed)
    return tensor_to_image(degraded), tensor_to_image(target), tensor_to_image(mask)
