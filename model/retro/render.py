"""The parametric period-print renderer: a modern photo -> the print a period process would have made of it.

The chain follows the light (docs/RETRO.md): lens (softness, cos^4 vignetting) -> emulsion (spectral
sensitivity, halation) -> negative (characteristic curve with toe, base + fog, grain as density noise at its
datasheet RMS granularity) -> printing (the printer exposes for the mid-tones) -> paper (characteristic curve
with toe and shoulder, image tone, paper base tint, fading of thin densities, hand-coloured washes; for
colour, three dye layers with their own fading) -> paper surface and light wear.

Every size is physical (millimetres on the negative or print, ``RetroParams``), random fields live on a grid
fixed to the negative or the print and are resampled to the image (area-averaged when the image is smaller,
as a smaller print or a larger scanning aperture averages grain), so a thumbnail looks like the large render
scaled down. Deterministic for a seed; vectorised torch on CPU or CUDA (noise is drawn on the CPU, so both
give the same print).

Code names: ``exposure`` linear light on the emulsion, ``log_e`` its log10, ``neg`` negative density,
``dens`` print image density above paper white, ``print_`` reflectance.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from model.retro.params import RetroParams
from model.retro.spectral import exposure_weights

GRAIN_APERTURE_MM = 0.048  # diffuse RMS granularity is measured through a 48 um aperture (ISO 6328 / Kodak)
MIN_GRAIN_MM = 0.003  # grain clumps are a few um: finer pixels see no more grain than 3 um ones
PAPER_CELL_MM = 0.15  # scale of a paper surface's fibre texture on the print
MID_GREY = 0.18  # the printer exposes so that a mid-grey subject prints as a mid-grey (reflectance 0.18)
# Colour dyes are not pure: each absorbs some of its neighbours' light. Rows: cyan, magenta, yellow dye;
# columns: density to R, G, B light. Columns sum to 1, so equal dye amounts print a neutral grey.
DYE_DENSITIES = torch.tensor([[0.85, 0.10, 0.05], [0.12, 0.78, 0.10], [0.03, 0.12, 0.85]])


def render(image: torch.Tensor, params: RetroParams, seed: int = 0) -> torch.Tensor:
    """(3, H, W) sRGB in [0, 1] -> the period print, (3, H, W) sRGB in [0, 1], on the image's device."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"render takes a (3, H, W) image, got shape {tuple(image.shape)}")
    p = params
    _, height, width = image.shape
    neg_mm_per_px = p.format_mm / max(height, width)
    noise = torch.Generator().manual_seed(seed)
    linear = _srgb_to_linear(image.float().clamp(0, 1))

    exposure = _gaussian_blur(linear, p.blur_mm / neg_mm_per_px)
    exposure = exposure * _cos4(height, width, p.vignette, image.device)
    if p.halation > 0:  # bright light passes the emulsion, reflects off the base and exposes a halo around it
        bright = (exposure - 0.6).clamp(min=0)
        halo = _gaussian_blur(bright, p.halation_mm / neg_mm_per_px)
        exposure = exposure + p.halation * halo * _col(p.halation_tint, image.device)

    if p.sensitivity == "colour":
        log_e = torch.log10(exposure.clamp(min=1e-4)) + _col(p.colour_balance, image.device)
        mean = log_e.mean(0, keepdim=True)
        log_e = mean + p.saturation * (log_e - mean)
    else:
        weights = torch.tensor(exposure_weights(p.sensitivity), device=image.device)
        log_e = torch.log10((exposure * weights[:, None, None]).sum(0, keepdim=True).clamp(min=1e-4))

    neg = _negative(log_e, p)
    if p.grain > 0:
        neg = neg + _grain(neg, p, height, width, noise)
    dens = _paper(neg, p)  # (1 or 3, H, W) image density above paper white
    dens = dens * (1 - p.highlight_loss * torch.exp(-dens / 0.5))  # thin silver fades first

    if p.sensitivity == "colour":
        fade = 1 - _col(p.dye_fade, image.device)
        channel_dens = torch.einsum("dc,dhw->chw", DYE_DENSITIES.to(image.device), dens * fade)
    else:
        channel_dens = dens * _col(p.tone, image.device)
    print_ = _col(p.paper_tint, image.device) * torch.pow(10.0, -channel_dens)

    if p.hand_tint > 0 and p.sensitivity != "colour":
        print_ = print_ * _washes(linear, p.hand_tint)
    if p.paper_texture > 0:
        cells = _field(p.print_mm / PAPER_CELL_MM, height, width, 1, noise, image.device)
        print_ = print_ * (1 + p.paper_texture * cells)
    out = _linear_to_srgb(print_.clamp(0, 1))
    if p.wear > 0:
        out = _wear(out, p.wear, seed)
    return out


def _negative(log_e: torch.Tensor, p: RetroParams) -> torch.Tensor:
    """Negative density: base + fog, a soft toe, then a straight line of slope ``negative_gamma``. The
    speed point sits 1.3 log units (about 4 stops) below mid-grey, where a normally exposed negative's
    shadows fall."""
    toe_width = 0.25
    x = (log_e - (math.log10(MID_GREY) - 1.3)) / toe_width
    return p.negative_fog + p.negative_gamma * toe_width * F.softplus(x)


def _paper(neg: torch.Tensor, p: RetroParams) -> torch.Tensor:
    """Print density above paper white from negative density: the paper's logistic characteristic curve,
    ``paper_range`` log units from 2% to 90% of its density range, highlights sharpened by ``toe`` and
    shadows by ``shoulder``. The printer picks the exposure that prints a mid-grey subject at reflectance
    0.18, then ``print_exposure`` departs from it."""
    k = math.log(0.90 / 0.10) - math.log(0.02 / 0.98)  # logit span from 2% to 90%
    k = k / p.paper_range
    mid_neg = _negative(torch.tensor(math.log10(MID_GREY)), p)
    target = (-math.log10(MID_GREY)) / p.paper_dmax  # mid-grey print as a fraction of the density range
    target = min(max(target, 0.02), 0.98)
    z_mid = math.log(target / (1 - target))
    z_mid /= p.toe if z_mid < 0 else p.shoulder
    # Print exposure rises as negative density falls: z = k * (log print exposure - its value at mid-grey).
    z = k * (mid_neg - neg + p.print_exposure) + z_mid
    z = torch.where(z < 0, z * p.toe, z * p.shoulder)
    return p.paper_dmax * torch.sigmoid(z)


def _grain(
    neg: torch.Tensor, p: RetroParams, height: int, width: int, noise: torch.Generator
) -> torch.Tensor:
    """Density noise with the datasheet's RMS granularity through a 48 um aperture at net density 1,
    growing as the square root of net density (more developed silver, more grains). Selwyn's law (sigma x
    sqrt(aperture area) is constant) gives every pixel its own sigma from its area on the negative: white
    noise per pixel, weaker on a thumbnail, stronger on a high-resolution scan, so that averaging a large
    render down gives the small render's grain. Below 3 um (finer than the grain clumps themselves) the law
    no longer holds, so the pixel is taken as 3 um. One independent field per dye layer (colour) or one."""
    pixel_mm = max(p.format_mm / max(height, width), MIN_GRAIN_MM)
    cells = torch.randn(neg.shape[0], height, width, generator=noise).to(neg.device)
    net = (neg - p.negative_fog).clamp(min=0.02)
    return (p.grain / 1000) * (GRAIN_APERTURE_MM / pixel_mm) * net.sqrt() * cells


def _field(
    cells_long: float, height: int, width: int, channels: int, noise: torch.Generator, device: torch.device
) -> torch.Tensor:
    """A smooth random field with one independent value per cell of a grid of ``cells_long`` cells along
    the long side (paper fibres), resampled to (H, W). Its standard deviation per pixel is 1 where pixels are
    no larger than a cell and falls as 1/sqrt(cells per pixel) where they are larger (an average of that many
    cells), whatever the ratio: measured on the resampled field itself, which holds many pixels."""
    long_side = max(height, width)
    gh = max(1, round(cells_long * height / long_side))
    gw = max(1, round(cells_long * width / long_side))
    grid = torch.randn(1, channels, gh, gw, generator=noise).to(device)
    if gh >= height and gw >= width:
        field = F.adaptive_avg_pool2d(grid, (height, width))[0]
    else:
        field = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False)[0]
    target = min(1.0, math.sqrt(height * width / (gh * gw)))
    if field.numel() >= 64:
        field = field / field.std().clamp(min=1e-6)
    return field * target


def _washes(linear: torch.Tensor, strength: float) -> torch.Tensor:
    """Hand-colouring: transparent dyes brushed over the print by region, following the subject's own
    colours, soft-edged and pale. Returns a multiplicative transmittance (3, H, W)."""
    brush_px = 0.01 * max(linear.shape[-2:])  # a brush ~1% of the print wide, whatever its size
    colour = _gaussian_blur(linear, brush_px)
    chroma = colour / colour.amax(0, keepdim=True).clamp(min=1e-3)
    return 1 - strength + strength * chroma.clamp(0, 1)


def _wear(out: torch.Tensor, amount: float, seed: int) -> torch.Tensor:
    """Light handling wear (dust, a hair, short faint scratches: ``engine.handling_wear``), drawn for this
    print's size. Never a long scratch across the print: wear is part of a look, not damage."""
    from model.degradation.engine import DegradationPlan, apply_plan, handling_wear

    _, height, width = out.shape
    ops = handling_wear(np.random.default_rng([seed, 7]), height, width, amount)
    if not ops:
        return out
    worn, _, _ = apply_plan(out.cpu(), DegradationPlan(height, width, "light", tuple(ops)))
    return worn.to(out.device)


def _cos4(height: int, width: int, half_angle_deg: float, device: torch.device) -> torch.Tensor:
    """Natural vignetting: light falls as cos^4 of the field angle; ``half_angle_deg`` at the corners."""
    if half_angle_deg <= 0:
        return torch.ones(1, height, width, device=device)
    y = (torch.arange(height, device=device) + 0.5 - height / 2) / (math.hypot(height, width) / 2)
    x = (torch.arange(width, device=device) + 0.5 - width / 2) / (math.hypot(height, width) / 2)
    r = torch.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
    theta = torch.atan(r * math.tan(math.radians(half_angle_deg)))
    return (torch.cos(theta) ** 4)[None]


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (C, H, W) by ``sigma`` px, reflect-padded; very wide blurs run on a
    downsampled copy (what they keep is smooth anyway)."""
    if sigma < 0.3:
        return x
    factor = max(1, int(sigma // 4))
    height, width = x.shape[-2:]
    small = x[None]
    if factor > 1:  # reflect-pad to a multiple of the factor so the upsampled result lands where it belongs
        pad_h, pad_w = -height % factor, -width % factor
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        small = F.avg_pool2d(F.pad(small, (0, pad_w, 0, pad_h), mode=mode), factor)
    s = sigma / factor
    radius = max(1, int(3 * s))
    radius = min(radius, small.shape[-1] - 1, small.shape[-2] - 1) if min(small.shape[-2:]) > 1 else 0
    if radius > 0:
        t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
        kernel = torch.exp(-0.5 * (t / s) ** 2)
        kernel = kernel / kernel.sum()
        c = small.shape[1]
        small = F.conv2d(
            F.pad(small, (radius, radius, 0, 0), mode="reflect"),
            kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
            groups=c,
        )
        small = F.conv2d(
            F.pad(small, (0, 0, radius, radius), mode="reflect"),
            kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1),
            groups=c,
        )
    if factor > 1:
        size = (small.shape[-2] * factor, small.shape[-1] * factor)
        small = F.interpolate(small, size=size, mode="bilinear", align_corners=False)[..., :height, :width]
    return small[0]


def _col(values, device: torch.device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)[:, None, None]


def _srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
