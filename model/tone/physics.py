"""Print ageing as a few physical numbers, and its analytic inverse: what ``--tone auto`` undoes.

The forward model is the degradation engine's own tone ops (``model/degradation/aging.py``), in its order:

1. dye fade: each dye loses a fraction ``dye`` (cyan, magenta, yellow) of its density, c -> c ** (1 - f);
2. yellowing of the base: c -> c * (1 + yellow_c * (0.3 + 0.7 * luma)), ``yellow`` <= 0, most in highlights;
3. contrast loss toward the paper: c -> c + fade * (paper_c - c).

So the inverse runs the other way: un-fade, un-yellow, un-dye. Sepia toning is not in it on purpose: a toned
print is a look its maker chose, so ``auto`` keeps it (docs/MODEL.md, "Tone"). Vignetting and uneven exposure
are spatial and stay too.

``strength`` (0..1) moves every parameter toward "leave it" along the physical axes (a half-strength
correction undoes half the fade, not half the pixels' difference), so one number caps the whole correction.
The result is a pointwise colour map, baked into one 3D LUT and applied to every pixel (and tile) alike.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

import torch
import torch.nn.functional as F

from model.degradation.aging import LUMA

# Grid points per axis: trilinear error against the exact map, mean 0.03 / max 2.8 grey levels
# (33 points: 0.13 / 5.9).
LUT_SIZE = 65
MAX_FADE = 0.8
MAX_YELLOW = 0.6
MAX_DYE = 0.7


@dataclass(frozen=True)
class ToneCorrection:
    """What ageing did to one print (the forward model's parameters) and how much of it to undo."""

    fade: float = 0.0  # 0..MAX_FADE: fraction of the way every tone moved toward ``paper``
    paper: tuple[float, float, float] = (1.0, 1.0, 1.0)  # RGB tone of the faded paper, 0..1
    yellow: tuple[float, float, float] = (0.0, 0.0, 0.0)  # per-channel gain lost by the base, -MAX_YELLOW..0
    dye: tuple[float, float, float] = (0.0, 0.0, 0.0)  # density lost by the cyan, magenta, yellow dye
    strength: float = 0.0  # 0 = leave the print as it is, 1 = undo all of the above
    gate: float = field(default=0.0, compare=False)  # the estimator's own confidence, before any cap

    def capped(self, cap: float) -> ToneCorrection:
        """The same correction at no more than ``cap`` (``--tone-strength``) of its strength."""
        return replace(self, strength=min(self.strength, max(0.0, min(1.0, cap))))

    @property
    def is_identity(self) -> bool:
        return self.strength <= 0 or (self.fade <= 0 and not any(self.yellow) and not any(self.dye))

    def to_json(self) -> str:
        return json.dumps({k: _rounded(v) for k, v in asdict(self).items()}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ToneCorrection:
        raw = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


def _rounded(value):
    return [round(float(v), 4) for v in value] if isinstance(value, tuple | list) else round(float(value), 4)


def luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, ...) -> (B, 1, ...) Rec. 601 luma (``aging.luminance`` takes one unbatched image)."""
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, *([1] * (x.dim() - 2)))
    return (x * weights).sum(1, keepdim=True)


def invert(image: torch.Tensor, fade, paper, yellow, dye) -> torch.Tensor:
    """The analytic inverse on (B, 3, ...) images in [0, 1]; parameters are (B,) / (B, 3) tensors (already
    scaled by strength), so the estimator trains through it. Returns the corrected images in [0, 1]."""
    shape = (-1, 3, *([1] * (image.dim() - 2)))
    fade = fade.reshape(-1, 1, *([1] * (image.dim() - 2)))
    paper, yellow, dye = paper.reshape(shape), yellow.reshape(shape), dye.reshape(shape)
    x = ((image - fade * paper) / (1 - fade).clamp_min(1 - MAX_FADE)).clamp(0, 1)
    y = x
    for _ in range(3):  # x = y / (1 + k (0.3 + 0.7 luma(x))): a contraction, three steps are within 1e-4
        x = (y / (1 + yellow * (0.3 + 0.7 * luma(x))).clamp_min(0.2)).clamp(0, 1)
    return x.clamp_min(0).pow(1 / (1 - dye).clamp_min(1 - MAX_DYE)).clamp(0, 1)


def scaled(correction: ToneCorrection, device=None) -> tuple[torch.Tensor, ...]:
    """The correction's parameters as (1,)/(1, 3) tensors, each moved toward identity by its strength."""
    s = correction.strength

    def t(v):
        return torch.tensor([v], dtype=torch.float32, device=device).reshape(1, -1)

    return (
        t(correction.fade * s),
        t(correction.paper),
        t([v * s for v in correction.yellow]),
        t([v * s for v in correction.dye]),
    )


def build_lut(correction: ToneCorrection, size: int = LUT_SIZE, device=None) -> torch.Tensor:
    """The correction as a (3, size, size, size) LUT indexed [channel, b, g, r] (grid_sample's z, y, x)."""
    axis = torch.linspace(0, 1, size, device=device)
    b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
    grid = torch.stack([r, g, b]).reshape(1, 3, -1)
    return invert(grid, *scaled(correction, device))[0].reshape(3, size, size, size)


def apply_lut(image: torch.Tensor, lut: torch.Tensor, rows: int = 512) -> torch.Tensor:
    """(3, H, W) in [0, 1] through ``lut`` by trilinear interpolation, ``rows`` at a time so a 100 MP scan
    needs no 100 MP sampling grid. Pointwise: a tile comes out exactly as the same pixels of the whole."""
    out = torch.empty_like(image)
    volume = lut.to(image.device, torch.float32)[None]  # (1, 3, D, H, W)
    for top in range(0, image.shape[1], rows):
        part = image[:, top : top + rows].float()
        grid = (part * 2 - 1).permute(1, 2, 0)[None, None]  # (1, 1, h, w, 3): x=r, y=g, z=b
        sampled = F.grid_sample(volume, grid, mode="bilinear", padding_mode="border", align_corners=True)
        out[:, top : top + rows] = sampled[0, :, 0].to(image.dtype)
    return out.clamp_(0, 1)


def correct(image: torch.Tensor, correction: ToneCorrection) -> torch.Tensor:
    """(3, H, W) in [0, 1] with ``correction`` applied through its LUT; the image itself when identity."""
    if correction.is_identity:
        return image
    return apply_lut(image, build_lut(correction, device=image.device))
