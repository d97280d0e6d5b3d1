"""Unstructured degradations of capture and reproduction: film grain, noise, blur, resampling, JPEG, halftone.

Every function takes an image as a float32 tensor (3, H, W) with values in [0, 1] on any device and returns a
new tensor of the same layout, dtype and device, clamped to [0, 1]. Sizes are in pixels. Random fields come
from a ``torch.Generator`` on the image's device seeded with ``seed``, so a call is deterministic on a given
device. ``jpeg`` is the exception to "any device": it encodes with Pillow on the CPU (see its docstring).
"""

from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from model.degradation.aging import luminance


def _generator(image: torch.Tensor, seed: int) -> torch.Generator:
    return torch.Generator(device=image.device).manual_seed(seed)


def _conv(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 2-D correlation of (C, H, W) with an odd (kh, kw) CPU kernel, replicate-padded (any size).

    Written as a weighted sum of shifted views over the non-zero taps: on the CPU that is 3-5x faster than
    a grouped conv2d for the small kernels used here, and the same arithmetic runs on any device.
    """
    kh, kw = kernel.shape
    _, h, w = image.shape
    padded = F.pad(image[None], (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")[0]
    out = torch.zeros_like(image)
    for (i, j), weight in zip(kernel.nonzero().tolist(), kernel[kernel != 0].tolist(), strict=True):
        out.add_(padded[:, i : i + h, j : j + w], alpha=weight)
    return out


def _gaussian_1d(sigma: float, half: int | None = None) -> torch.Tensor:
    half = max(1, math.ceil(3 * sigma)) if half is None else half
    x = torch.arange(-half, half + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / max(sigma, 1e-3)) ** 2)
    return k / k.sum()


def _separable(image: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return _conv(_conv(image, k[None, :]), k[:, None])


def gaussian_blur(image: torch.Tensor, sigma: float, radius: int | None = None) -> torch.Tensor:
    """Isotropic Gaussian blur (separable, kernel radius 3 sigma): soft focus, scanner optics. ``radius``
    truncates the kernel instead, as fixed 3/5/7 kernels do in the published recipes."""
    return _separable(image, _gaussian_1d(sigma, radius)).clamp(0, 1)


def motion_blur(image: torch.Tensor, length: float, angle: float) -> torch.Tensor:
    """Camera shake: convolution with an anti-aliased line ``length`` px long at ``angle`` radians."""
    half = max(1, math.ceil(length / 2 + 1))
    r = torch.arange(-half, half + 1, dtype=torch.float64)
    y, x = torch.meshgrid(r, r, indexing="ij")
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    t = ((x * dx + y * dy) / max(dx * dx + dy * dy, 1e-6)).clamp(-1, 1)
    dist = torch.hypot(x - t * dx, y - t * dy)
    kernel = (1 - dist).clamp_min(0)
    return _conv(image, kernel / kernel.sum()).clamp(0, 1)


def defocus_blur(image: torch.Tensor, radius: float) -> torch.Tensor:
    """Out-of-focus lens: convolution with an anti-aliased disk of ``radius`` px (the aperture's image)."""
    half = max(1, math.ceil(radius + 0.5))
    r = torch.arange(-half, half + 1, dtype=torch.float64)
    kernel = (radius + 0.5 - torch.hypot(r[:, None], r[None, :])).clamp(0, 1)
    return _conv(image, kernel / kernel.sum()).clamp(0, 1)


def film_grain(image: torch.Tensor, strength: float, size: float, mono: float, seed: int) -> torch.Tensor:
    """Silver/dye-cloud grain: blurred Gaussian noise whose amplitude follows the tones.

    ``strength`` is the noise std at mid-grey, ``size`` the blur sigma in px (the clump size), ``mono`` in
    0..1 the share that is common to all channels (1 = B&W film). The blurred noise is rescaled back to unit
    variance so ``size`` changes texture, not contrast. Grain is strongest in the mid-tones and weaker in the
    highlights and deep shadows, as on real prints.
    """
    _, h, w = image.shape
    gen = _generator(image, seed)
    common = torch.randn((1, h, w), generator=gen, device=image.device, dtype=image.dtype)
    own = torch.randn((3, h, w), generator=gen, device=image.device, dtype=image.dtype)
    noise = mono * common + math.sqrt(max(0.0, 1 - mono * mono)) * own
    k = _gaussian_1d(size)
    noise = _separable(noise, k) / k.pow(2).sum().item()  # the std of blurred unit white noise
    lum = luminance(image)
    amplitude = strength * (0.25 + 0.75 * torch.sqrt((4 * lum * (1 - lum)).clamp_min(0)))
    return (image + amplitude * noise).clamp(0, 1)


def gaussian_noise(image: torch.Tensor, sigma: float, gray: bool, seed: int) -> torch.Tensor:
    """Additive white Gaussian noise of std ``sigma``; ``gray`` uses one field for all channels."""
    _, h, w = image.shape
    shape = (1 if gray else 3, h, w)
    noise = torch.randn(shape, generator=_generator(image, seed), device=image.device, dtype=image.dtype)
    return (image + sigma * noise).clamp(0, 1)


def speckle_noise(image: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """Multiplicative noise, image * (1 + sigma * N(0, 1)): brighter areas get noisier."""
    noise = torch.randn(
        image.shape, generator=_generator(image, seed), device=image.device, dtype=image.dtype
    )
    return (image * (1 + sigma * noise)).clamp(0, 1)


def poisson_noise(image: torch.Tensor, photons: float, seed: int) -> torch.Tensor:
    """Shot noise of a sensor collecting ``photons`` photons at full white (fewer = noisier).

    Poisson(image * photons) / photons is approximated by a Gaussian of the same variance, image / photons:
    within a few percent from about 10 photons up, and ten times faster than torch.poisson on the CPU.
    """
    noise = torch.randn(
        image.shape, generator=_generator(image, seed), device=image.device, dtype=image.dtype
    )
    return (image + torch.sqrt(image.clamp_min(0) / photons) * noise).clamp(0, 1)


def salt_and_pepper(image: torch.Tensor, amount: float, salt: float, seed: int) -> torch.Tensor:
    """A fraction ``amount`` of pixels set to white (share ``salt``) or black: dead and hot scanner pixels."""
    _, h, w = image.shape
    u = torch.rand((1, h, w), generator=_generator(image, seed), device=image.device, dtype=image.dtype)
    out = torch.where(u < amount * salt, 1.0, image)
    return torch.where(u > 1 - amount * (1 - salt), 0.0, out)


def resize(image: torch.Tensor, scale: float, down: str, up: str) -> torch.Tensor:
    """Down-sample by ``scale`` (0..1) with mode ``down`` then back to (H, W) with mode ``up``.

    Modes are torch interpolate modes ("nearest", "area", "bilinear", "bicubic"); bilinear and bicubic
    down-sampling are antialiased, as real reduction of a print or a small scan is; nearest is the aliased
    resampling of cheap software, as in the Bringing-Old-Photos-Back-to-Life recipe.
    """
    _, h, w = image.shape
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(image[None], size=size, mode=down, **_interp_kwargs(down, antialias=True))
    return F.interpolate(small, size=(h, w), mode=up, **_interp_kwargs(up))[0].clamp(0, 1)


def _interp_kwargs(mode: str, antialias: bool = False) -> dict:
    if mode in ("nearest", "area"):
        return {}
    return {"antialias": True, "align_corners": False} if antialias else {"align_corners": False}


def jpeg(image: torch.Tensor, quality: int, subsampling: int) -> torch.Tensor:
    """JPEG round trip at ``quality`` (1..95) and chroma ``subsampling`` (0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0).

    Runs with Pillow on the CPU: the tensor is moved to the CPU, rounded to uint8, encoded and decoded, and
    moved back to the input's device, so it also quantises the image to 8 bits. Pillow's encoder is
    deterministic, so equal inputs give equal bytes.
    """
    array = (image.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    decoded = np.asarray(Image.open(buffer).convert("RGB"))
    out = torch.from_numpy(decoded.copy()).permute(2, 0, 1).to(device=image.device, dtype=image.dtype)
    return out / 255


def halftone(image: torch.Tensor, cell: float, angles: list[float], strength: float) -> torch.Tensor:
    """A print reproduced by a rotated dot screen (newspaper, book plate), then scanned.

    Each channel is screened at its own angle (radians; equal angles give a monochrome-looking screen, the
    classic 15/75/0 degrees give colour rosettes) with dots ``cell`` px apart whose area follows the local
    ink coverage 1 - value. The screen is softened by a blur of a third of a cell, as a scanner that
    barely resolves the dots would, and blended in with ``strength`` 0..1.
    """
    _, h, w = image.shape
    ys = torch.arange(h, device=image.device, dtype=image.dtype)[:, None] * (2 * math.pi / cell)
    xs = torch.arange(w, device=image.device, dtype=image.dtype)[None, :] * (2 * math.pi / cell)
    ramp = math.pi / cell  # the spot function changes by at most about this much per pixel
    screened = []
    for channel, angle in zip(image, angles, strict=True):
        c, s = math.cos(angle), math.sin(angle)
        # Cosine spot function cos(2 pi u) + cos(2 pi v) in screen coordinates u, v: round dots in the
        # highlights, a checkerboard at 50%, inverted dots in the shadows, inked area near linear in the
        # threshold. Expanded as cos(a + b) = cos a cos b - sin a sin b of 1-D terms to avoid a full-size cos.
        cu = torch.cos(xs * c) * torch.cos(ys * s) - torch.sin(xs * c) * torch.sin(ys * s)
        cv = torch.cos(ys * c) * torch.cos(xs * s) + torch.sin(ys * c) * torch.sin(xs * s)
        spot = (cu + cv) / 2
        # Half-ramp margins keep pure white free of ink and pure black solid.
        threshold = (1 + ramp / 2) * (1 - 2 * (1 - channel))
        ink = ((spot - threshold) / ramp + 0.5).clamp(0, 1)  # about one pixel of anti-aliasing
        screened.append(1 - ink)
    dots = gaussian_blur(torch.stack(screened), cell / 3)
    return (image + (dots - image) * strength).clamp(0, 1)
