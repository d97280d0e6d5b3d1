"""Tone and colour aging of a print: fading, yellowing and sepia, dye fade, vignetting, uneven exposure,
grayscale.

Every function takes an image as a float32 tensor (3, H, W) with values in [0, 1] on any device and returns a
new tensor of the same layout, dtype and device, clamped to [0, 1]. Parameters are plain Python numbers so a
degradation plan stays JSON-serialisable; the one per-pixel random field (the uneven-exposure gain) comes from
a ``torch.Generator`` on the image's device seeded with ``seed``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Rec. 601 luma weights: close to what panchromatic B&W film records, and what JPEG uses.
LUMA = (0.299, 0.587, 0.114)


def channel_values(values: list[float] | tuple[float, ...], like: torch.Tensor) -> torch.Tensor:
    """Three per-channel values as a (3, 1, 1) tensor of ``like``'s dtype and device, to broadcast."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(3, 1, 1)


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) float in [0, 1] -> (1, H, W) luma in [0, 1]."""
    return (image * channel_values(LUMA, image)).sum(0, keepdim=True)


def grayscale(image: torch.Tensor) -> torch.Tensor:
    """A black-and-white print: luma replicated to three channels, (3, H, W) in [0, 1]."""
    return luminance(image).expand(3, -1, -1).contiguous()


def fade(image: torch.Tensor, amount: float, level: list[float]) -> torch.Tensor:
    """Contrast loss: every tone moves ``amount`` (0..1) of the way toward ``level``, an RGB paper tone.

    Blacks lift and whites dull toward the paper, the look of a print whose silver or dyes have thinned.
    """
    return (image + (channel_values(level, image) - image) * amount).clamp(0, 1)


def yellowing(image: torch.Tensor, strength: float, tint: list[float]) -> torch.Tensor:
    """Yellowed paper and varnish: multiply by ``tint`` (RGB gains <= 1), ``strength`` 0..1.

    The cast is weighted toward the highlights because it is the paper base that yellows, and it shows most
    where little image density covers it.
    """
    weight = strength * (0.3 + 0.7 * luminance(image))
    return (image * (1 + (channel_values(tint, image) - 1) * weight)).clamp(0, 1)


def sepia(image: torch.Tensor, strength: float, warmth: float) -> torch.Tensor:
    """Sepia toning: luma mapped through per-channel gammas, blended in with ``strength`` 0..1.

    Gammas (1 - 0.35 w, 1 + 0.1 w, 1 + 0.8 w) for ``warmth`` w in 0..1 keep paper white and shadows black and
    turn the mid-tones brown, as sulphide toning of a silver print does.
    """
    gamma = channel_values((1 - 0.35 * warmth, 1 + 0.1 * warmth, 1 + 0.8 * warmth), image)
    toned = luminance(image).clamp_min(1e-6).pow(gamma)
    return (image + (toned - image) * strength).clamp(0, 1)


def dye_fade(image: torch.Tensor, cyan: float, magenta: float, yellow: float) -> torch.Tensor:
    """Chromogenic dye fade, each dye losing a fraction (0..0.9) of its optical density.

    The cyan, magenta and yellow dyes absorb red, green and blue; density is -log(transmission), so keeping a
    fraction (1 - f) of the dye maps a channel c to c ** (1 - f). A faded cyan dye therefore lets red through
    and gives the familiar red/magenta cast, strongest in the shadows where there was most dye.
    """
    exponent = channel_values((1 - cyan, 1 - magenta, 1 - yellow), image)
    return image.clamp_min(1e-6).pow(exponent).clamp(0, 1)


def vignette(
    image: torch.Tensor, strength: float, radius: float, softness: float, cx: float, cy: float
) -> torch.Tensor:
    """Darkened corners from lens fall-off or enlarger light: gain 1 - strength * smoothstep.

    ``radius`` and ``softness`` are in units of the half-diagonal-normalised distance (the corners are at
    about 1.41); ``cx``, ``cy`` offset the centre as fractions of the half width/height.
    """
    _, h, w = image.shape
    ys = torch.linspace(-1, 1, h, device=image.device, dtype=image.dtype) - cy
    xs = torch.linspace(-1, 1, w, device=image.device, dtype=image.dtype) - cx
    r = torch.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    t = ((r - radius) / max(softness, 1e-6)).clamp(0, 1)
    gain = 1 - strength * t * t * (3 - 2 * t)
    return (image * gain).clamp(0, 1)


def uneven_exposure(image: torch.Tensor, strength: float, cells: int, seed: int) -> torch.Tensor:
    """A smooth multiplicative gain field, exp(strength * N(0, 1) on a (cells+1)^2 grid, bicubic-upsampled).

    Models uneven enlarger light, development and scanner illumination: large, soft light and dark areas.
    """
    _, h, w = image.shape
    gen = torch.Generator(device=image.device).manual_seed(seed)
    coarse = torch.randn((1, 1, cells + 1, cells + 1), generator=gen, device=image.device, dtype=image.dtype)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)[0]
    return (image * torch.exp(strength * field)).clamp(0, 1)
