"""An independent re-implementation of the published degradation recipe of "Bringing Old Photos Back to Life".

Reference: Z. Wan, B. Zhang, D. Chen, P. Zhang, D. Chen, J. Liao, F. Wen, "Bringing Old Photos Back to Life",
CVPR 2020, and its code, github.com/microsoft/Bringing-Old-Photos-Back-to-Life, file
``Global/data/online_dataset_for_old_photos.py`` (read at commit 33875eccf4ebcd3665cf38cc56f3a0ce563d3a9c):
``online_add_degradation_v2`` and the helpers it calls, plus the grayscale step of ``PairOldPhotos``.

This module exists to test a model trained on patina's own degradation engine against degradations it never
saw, so it deliberately imports nothing from that engine (``model.degradation.engine``, ``.artifacts``,
``.defects``, ``.aging``, ``.mixture``): only numpy, Pillow and OpenCV.

The recipe (``degrade_published``):

1. Four operations, visited in a uniformly random order (``np.random.permutation(4)``), each applied
   independently with probability 0.7:

   - Gaussian blur (``blur_image_v2``): square kernel of size 3, 5 or 7 (uniform), sigma uniform in [1, 5],
     ``cv2.GaussianBlur`` on the uint8 RGB array.
   - Noise, one of three kinds with equal probability:

     * Gaussian (``synthesize_gaussian``): additive, per pixel and channel, sigma uniform in [5, 50] / 255;
     * speckle (``synthesize_speckle``): ``x + n * x`` with n Gaussian, sigma uniform in [5, 50] / 255;
     * salt-and-pepper (``synthesize_salt_pepper``): each pixel *channel* flips with probability
       ``amount`` ~ U(0, 0.01); a flipped value becomes 255 with probability ``salt_vs_pepper`` ~ U(0.3, 0.8),
       else 0 (so the specks are coloured, as in the source).

     Noisy values are clipped and truncated (not rounded) to uint8, as the source's ``np_to_pil`` does.
   - Low resolution (``synthesize_low_resolution``): new width and height drawn *independently* as integers
     in [floor(W / 2), W] and [floor(H / 2), H] (so the aspect ratio may change), bicubic downscale, then back
     to (W, H) with nearest or bilinear (probability 0.5 each), all with Pillow.
   - JPEG (``convertToJpeg``): Pillow encode/decode at an integer quality in [40, 100], Pillow's other
     defaults (4:2:0 chroma subsampling).

2. With probability 0.1 both the degraded photo and the target become grayscale (Pillow ``convert("L")``,
   Rec. 601 luma, then back to three identical channels), as ``PairOldPhotos.__getitem__`` does.

3. Only when ``scratches=True``: 1 to 6 thin synthetic scratches (see ``synthesize_scratches``).

What differs from the published code:

- Scratches. The paper blends real scratch and paper texture scans into the photo; the repository's paired
  loader (``PairOldPhotos_with_hole``) instead whitens irregular hole masks from a mask data set. Neither the
  scans nor the masks are available here, so ``synthesize_scratches`` draws thin anti-aliased curved lines,
  light or dark, and returns their mask. Like the repository's holes they are added last, after the
  unstructured degradations and the grayscale step, so the mask is exact.
- Randomness comes from the caller's ``np.random.Generator`` instead of Python's ``random`` and numpy's global
  state, so results are reproducible per call but not draw-for-draw identical to the original.
- The source's float32 round trip through [0, 1] (``pil_to_np`` / ``np_to_pil``) can shift an untouched pixel
  down by one level; noise here is computed in float64 on the 0-255 scale, so untouched pixels stay exact.
- No resizing to 256 px, cropping or flipping: those belong to the training loader, not to the degradation.
- Images of any size H, W >= 8 are accepted (the source filters out images under 256 px).
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

__all__ = ["degrade_published", "synthesize_scratches"]

OP_PROBABILITY = 0.7  # online_add_degradation_v2: `random.uniform(0, 1) < 0.7` per operation
GRAYSCALE_PROBABILITY = 0.1  # PairOldPhotos.__getitem__: `random.uniform(0, 1) < 0.1`
BLUR_KERNEL_SIZES = (3, 5, 7)
BLUR_SIGMA = (1.0, 5.0)
NOISE_SIGMA = (5.0 / 255.0, 50.0 / 255.0)
SALT_PEPPER_AMOUNT = (0.0, 0.01)
SALT_VS_PEPPER = (0.3, 0.8)
JPEG_QUALITY = (40, 100)  # inclusive, like random.randint
MIN_SIDE = 8


def degrade_published(
    clean: np.ndarray, rng: np.random.Generator, scratches: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """clean (H, W, 3) uint8 RGB -> (degraded (H, W, 3) uint8, target (H, W, 3) uint8,
    scratch mask (H, W) bool).

    target is clean, or clean's grayscale (3 identical channels, Rec. 601 luma) when the recipe made the
    photo grayscale. The mask is all False unless ``scratches``. Deterministic for a given ``rng`` state; the
    scratches are drawn from ``rng`` last, so turning them on leaves the rest of the draw unchanged.
    """
    if clean.ndim != 3 or clean.shape[2] != 3 or clean.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB array, got {clean.shape} {clean.dtype}")
    h, w = clean.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise ValueError(f"image must be at least {MIN_SIDE}x{MIN_SIDE}, got {h}x{w}")

    image = np.ascontiguousarray(clean)
    for op in rng.permutation(4):
        # One draw per operation whatever the order, as in the source, so each fires with exactly 0.7.
        if rng.random() >= OP_PROBABILITY:
            continue
        if op == 0:
            image = _blur(image, rng)
        elif op == 1:
            image = _noise(image, rng)
        elif op == 2:
            image = _low_resolution(image, rng)
        else:
            image = _jpeg(image, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1], endpoint=True)))

    target = clean.copy()
    if rng.random() < GRAYSCALE_PROBABILITY:
        image = _grayscale(image)
        target = _grayscale(target)

    if scratches:
        image, mask = synthesize_scratches(image, rng)
    else:
        mask = np.zeros((h, w), dtype=bool)
    return image, target, mask


def synthesize_scratches(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw 1-6 thin (1-2 px), long, gently curved, anti-aliased scratches, each light or dark.

    image (H, W, 3) uint8 -> (scratched (H, W, 3) uint8, mask (H, W) bool of the pixels at least a quarter
    covered by a scratch's stroke).
    """
    h, w = image.shape[:2]
    out = image.astype(np.float64)
    mask = np.zeros((h, w), dtype=bool)
    diagonal = float(np.hypot(h, w))
    for _ in range(int(rng.integers(1, 6, endpoint=True))):
        points = _scratch_path(rng, h, w, diagonal)
        thickness = int(rng.integers(1, 2, endpoint=True))
        coverage = np.zeros((h, w), dtype=np.uint8)
        # shift=4 keeps 1/16-px vertex precision, without which thin AA curves turn into visible stair steps.
        cv2.polylines(coverage, [points], False, 255, thickness, cv2.LINE_AA, shift=4)
        # Emulsion scraped off a print shows the white paper base, so light scratches are the common case;
        # dark ones come from scratched negatives.
        value = rng.uniform(200.0, 255.0) if rng.random() < 0.7 else rng.uniform(0.0, 60.0)
        alpha = (coverage.astype(np.float64) / 255.0 * rng.uniform(0.6, 1.0))[..., None]
        out = out * (1.0 - alpha) + value * alpha
        # Quarter coverage: the faint AA fringe is not "under" the scratch, but the 1-px core always is.
        mask |= coverage >= 64
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def _scratch_path(rng: np.random.Generator, h: int, w: int, diagonal: float) -> np.ndarray:
    """Vertices (N, 1, 2) int32, in 1/16 px, of a long curve through a random point of the image."""
    length = rng.uniform(0.5, 1.2) * diagonal
    n = max(8, int(length / 3.0))
    s = np.linspace(-0.5, 0.5, n)
    # A slow overall turn plus a low-frequency wobble: real scratches are arcs, not straight rules.
    heading = (
        rng.uniform(0.0, np.pi)
        + rng.uniform(-0.8, 0.8) * s
        + rng.uniform(0.0, 0.15) * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * s + rng.uniform(0.0, 2 * np.pi))
    )
    step = length / (n - 1)
    x = np.cumsum(np.cos(heading)) * step
    y = np.cumsum(np.sin(heading)) * step
    # Centre the curve on a point inside the image so every scratch is at least partly visible.
    x += rng.uniform(0.0, w - 1) - x[n // 2]
    y += rng.uniform(0.0, h - 1) - y[n // 2]
    return np.rint(np.stack([x, y], axis=1) * 16).astype(np.int32).reshape(-1, 1, 2)


def _blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    k = int(rng.choice(BLUR_KERNEL_SIZES))
    return cv2.GaussianBlur(image, (k, k), rng.uniform(*BLUR_SIGMA))


def _noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float64)
    kind = int(rng.integers(3))
    if kind == 0:
        noisy = x + rng.normal(0.0, rng.uniform(*NOISE_SIGMA), size=x.shape) * 255.0
    elif kind == 1:
        noisy = x + rng.normal(0.0, rng.uniform(*NOISE_SIGMA), size=x.shape) * x
    else:
        amount = rng.uniform(*SALT_PEPPER_AMOUNT)
        salt_vs_pepper = rng.uniform(*SALT_VS_PEPPER)
        flipped = rng.random(x.shape) < amount
        salted = rng.random(x.shape) < salt_vs_pepper
        noisy = x.copy()
        noisy[flipped & salted] = 255.0
        noisy[flipped & ~salted] = 0.0
    # Truncation, not rounding, matches the source's `astype(np.uint8)` in np_to_pil.
    return np.clip(noisy, 0.0, 255.0).astype(np.uint8)


def _low_resolution(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = image.shape[:2]
    new_w = int(rng.integers(w // 2, w, endpoint=True))
    new_h = int(rng.integers(h // 2, h, endpoint=True))
    # Pillow rather than cv2: its bicubic downscale widens the kernel (antialiases) like the source's.
    small = Image.fromarray(image).resize((new_w, new_h), Image.Resampling.BICUBIC)
    up = Image.Resampling.NEAREST if rng.random() < 0.5 else Image.Resampling.BILINEAR
    return np.asarray(small.resize((w, h), up)).copy()


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    with io.BytesIO() as buffer:
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        return np.asarray(Image.open(buffer).convert("RGB")).copy()


def _grayscale(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("L").convert("RGB")).copy()
