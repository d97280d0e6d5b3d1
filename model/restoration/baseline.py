"""Classical restoration baseline: what an archivist could do without a GAN, tuned to be a fair bar.

Pipeline (each step a textbook tool, each strength tuned on the degradation engine's output, light to heavy):

1. Impulse noise: a switching median replaces only pixels beyond all eight neighbours (salt and pepper).
2. Noise, grain, JPEG blocking: non-local means (``cv2.fastNlMeansDenoisingColored``) with its strength
   set from a robust (Donoho MAD) noise estimate, so a clean scan is left almost untouched.
3. Scratches, hairs, dust: white top-hat / black-hat of the luminance finds bright and dark structures
   narrower than the structuring element. Scratches are what survives an opening by line segments (12
   directions); specks are small components. Only near-neutral (paper white or black), high-contrast ones
   in a quiet neighbourhood and not beside a wider structure are kept; ``cv2.inpaint`` (Telea) fills them.
4. Tone: a toned black-and-white print (chroma a function of luminance alone) becomes neutral gray, and a
   lifted black point (fading toward the paper) is pulled down with each channel's white point fixed.

Every step is conservative on purpose: inpainting real texture or re-levelling a fine photo costs more PSNR
than the defect it fixes. Tried and dropped because they lost PSNR on average: per-channel percentile
stretch, gray-world balance, midtone gamma, vignette/illumination flattening, unsharp masking.

Images are uint8 numpy arrays, (H, W, 3) RGB or (H, W) gray, values 0..255.
Everything is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.degradation.aging import LUMA

_LUMA = np.array(LUMA, np.float32)


@dataclass(frozen=True)
class BaselineConfig:
    """Tuned parameters. Pixel sizes are for a 512 px image and scale with min(H, W) / 512, like the
    degradation engine's; intensities are 8-bit levels."""

    impulse_threshold: int = 40  # beyond all 8 neighbours by this much: grain rarely gets there, salt does
    nlm_strength: float = 1.0  # NLM h per estimated noise sigma (1.4 trades light-severity PSNR for SSIM)
    nlm_max_h: float = 30.0
    nlm_search: int = 15  # search window 15, not 21: half the time for nearly the same result
    defect_kernel: int = 9  # top-hat element: specks up to ~7 px across, scratches up to ~5 px wide
    defect_low: float = 20.0  # hysteresis: a defect is the response above this ...
    defect_high: float = 40.0  # ... connected to a response above this
    defect_max_chroma: float = 40.0  # max - min of RGB; scratches and dust are paper white or black
    scratch_segment: int = 21  # px, line element of the directional opening
    scratch_min_length: int = 100  # px (bounding box side): shorter lines are too often drawn detail
    scratch_min_contrast: float = 40.0  # mean directional response along the scratch
    scratch_max_busy: float = 0.35  # mean fraction of responding pixels nearby
    scratch_max_wide: float = 0.05  # mean fraction of wider structure nearby
    speck_max_area: int = 50  # px; 0 turns speck removal off (it costs ~0.15 dB on light damage)
    speck_min_contrast: float = 100.0  # peak top-hat response; dust on a print is stark
    speck_max_busy: float = 0.03  # specks must stand alone: texture is where the false alarms are
    inpaint_radius: int = 3
    gray_chroma: float = 2.0  # 90th-percentile chroma residual below which a print is monochrome
    black_pct: float = 1.0  # luminance black point percentile
    black_target: float = 20.0  # a black point above it is pulled down to it; a darker one is left alone
    white_pct: float = 99.99  # per-channel white point: the fixed end of the stretch
    max_gain: float = 2.0  # contrast stretch cap


def restore_classical(image: np.ndarray, cfg: BaselineConfig = BaselineConfig()) -> np.ndarray:
    """Restore a degraded photo: uint8 (H, W, 3) RGB -> uint8 (H, W, 3) RGB, or (H, W) gray -> (H, W) gray.

    Values 0..255; deterministic (single-image statistics only, no randomness).
    """
    x = _clean(_check(image), cfg)
    mask = _detect(x, cfg)
    if mask.any():
        mask = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))  # stroke edges are soft
        x = cv2.inpaint(x, mask, cfg.inpaint_radius, cv2.INPAINT_TELEA)
    return classical_tone(x, cfg)


def classical_tone(image: np.ndarray, cfg: BaselineConfig = BaselineConfig()) -> np.ndarray:
    """The baseline's tone step alone (step 4: a toned monochrome print made neutral, then the black
    point pulled down), uint8 (H, W, 3) or (H, W) -> the same: the last step of ``restore_classical``, and
    the classical bar ``--tone auto`` must clear."""
    x = _check(image)
    if x.ndim == 3 and is_toned_monochrome(x, cfg):
        x = np.repeat(cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return _levels(x, cfg)


def defect_mask_classical(image: np.ndarray, cfg: BaselineConfig = BaselineConfig()) -> np.ndarray:
    """(H, W) bool mask of the scratches, hairs and specks ``restore_classical`` inpaints (before its
    one-pixel dilation), for a uint8 (H, W, 3) RGB or (H, W) gray image. Detection runs after impulse
    removal and denoising, as in the restoration, so grain does not read as defects."""
    return _detect(_clean(_check(image), cfg), cfg)


def _check(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"expected uint8 (H, W) or (H, W, 3), got {image.shape} {image.dtype}")
    return np.ascontiguousarray(image)


def _gray(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _clean(image: np.ndarray, cfg: BaselineConfig) -> np.ndarray:
    """Switching median, then NLM at the estimated noise level."""
    ring = np.ones((3, 3), np.uint8)
    ring[1, 1] = 0
    x, t = image.astype(np.int16), cfg.impulse_threshold
    outlier = (x > cv2.dilate(image, ring).astype(np.int16) + t) | (
        x < cv2.erode(image, ring).astype(np.int16) - t
    )
    image = np.where(outlier, cv2.medianBlur(image, 3), image)
    h = min(cfg.nlm_max_h, cfg.nlm_strength * _noise_sigma(_gray(image)))
    if h < 1:  # a clean scan: NLM would only soften texture
        return image
    if image.ndim == 2:
        return cv2.fastNlMeansDenoising(image, None, h, 7, cfg.nlm_search)
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, cfg.nlm_search)


def _noise_sigma(gray: np.ndarray) -> float:
    """Donoho's MAD estimate of Gaussian noise std from the finest diagonal Haar band, in levels."""
    g = gray[: gray.shape[0] // 2 * 2, : gray.shape[1] // 2 * 2].astype(np.float32)
    hh = (g[0::2, 0::2] - g[0::2, 1::2] - g[1::2, 0::2] + g[1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745)


def _detect(image: np.ndarray, cfg: BaselineConfig) -> np.ndarray:
    gray = _gray(image)
    s = min(gray.shape) / 512
    k = max(3, round(cfg.defect_kernel * max(s, 0.35)) | 1)
    chroma = np.zeros(gray.shape, np.uint8) if image.ndim == 2 else np.ptp(image, axis=2)
    neutral = chroma <= cfg.defect_max_chroma  # scratches and dust are paper white or black, not coloured
    mask = np.zeros(gray.shape, bool)
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):  # bright defects, then dark ones
        response = np.where(neutral, cv2.morphologyEx(gray, op, _disk(k)), 0).astype(np.uint8)
        # Scratches: response that survives an opening by a straight segment in one of 12 directions.
        segment = max(5, round(cfg.scratch_segment * s) | 1)
        linear = np.max([cv2.morphologyEx(response, cv2.MORPH_OPEN, e) for e in _segments(segment)], axis=0)
        scratches = _hysteresis(linear.astype(np.float32), cfg)
        candidates = _hysteresis(response.astype(np.float32), cfg)
        # How much else responds nearby: foliage, fur, text and foam are busy, a scratch on a print is not.
        busy = cv2.GaussianBlur((candidates | scratches).astype(np.float32), (0, 0), 8 * max(s, 0.25))
        # Structure that only a twice-wider element picks up: the thin edge of a wide object (a propeller
        # blade, a window frame) sits next to it, a scratch does not.
        wide = cv2.morphologyEx(gray, op, _disk(2 * k + 1)) > cfg.defect_high
        wide &= cv2.dilate(scratches.astype(np.uint8), _disk(k)) == 0
        wide_near = cv2.blur(wide.astype(np.float32), (2 * k + 1, 2 * k + 1))

        n, labels, stats, _ = cv2.connectedComponentsWithStats(scratches.astype(np.uint8), connectivity=8)
        length = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
        keep = length >= cfg.scratch_min_length * s
        keep &= _mean(labels, n, linear) >= cfg.scratch_min_contrast
        keep &= _mean(labels, n, busy) <= cfg.scratch_max_busy
        keep &= _mean(labels, n, wide_near) <= cfg.scratch_max_wide
        mask |= _take(keep, labels)

        # Specks: small, stark, neutral and alone.
        n, labels, stats, _ = cv2.connectedComponentsWithStats((candidates & ~scratches).astype(np.uint8), 8)
        peak = np.zeros(n, np.float32)
        np.maximum.at(peak, labels.ravel(), response.ravel())
        keep = stats[:, cv2.CC_STAT_AREA] <= cfg.speck_max_area * max(s, 0.25) ** 2
        keep &= peak >= cfg.speck_min_contrast
        keep &= _mean(labels, n, busy) <= cfg.speck_max_busy
        keep &= _mean(labels, n, chroma) <= cfg.defect_max_chroma
        mask |= _take(keep, labels)
    return mask


def _disk(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _segments(length: int, directions: int = 12) -> list[np.ndarray]:
    """Line structuring elements of ``length`` px through the centre, evenly spaced over 180 degrees."""
    c = (length - 1) / 2
    kernels = []
    for angle in np.arange(directions) * np.pi / directions:
        kernel = np.zeros((length, length), np.uint8)
        dx, dy = c * np.cos(angle), c * np.sin(angle)
        cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1, 1)
        kernels.append(kernel)
    return kernels


def _hysteresis(response: np.ndarray, cfg: BaselineConfig) -> np.ndarray:
    """Components of ``response > defect_low`` that contain a pixel above ``defect_high``."""
    n, labels = cv2.connectedComponents((response > cfg.defect_low).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[labels[response > cfg.defect_high]] = True
    return _take(keep, labels)


def _mean(labels: np.ndarray, n: int, values: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each of the ``n`` labelled components."""
    flat = labels.ravel()
    sums = np.bincount(flat, values.ravel().astype(np.float64), n)
    return sums / np.maximum(np.bincount(flat, minlength=n), 1)


def _take(keep: np.ndarray, labels: np.ndarray) -> np.ndarray:
    keep[0] = False  # the background
    return keep[labels]


def is_toned_monochrome(image: np.ndarray, cfg: BaselineConfig = BaselineConfig()) -> bool:
    """True when chroma is (nearly) a function of luminance: a B&W print, possibly sepia-toned or yellowed.
    Strict on purpose: graying a colour photo costs far more than a leftover tint."""
    ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb).reshape(-1, 3).astype(np.float32)
    bins = (ycc[:, 0] // 2).astype(np.int64)  # 2-level bins: steep toning curves stay flat within one
    count = np.maximum(np.bincount(bins, minlength=128), 1)
    residual = np.zeros(len(ycc), np.float32)
    for c in (1, 2):
        mean = np.bincount(bins, ycc[:, c], 128) / count
        residual = np.maximum(residual, np.abs(ycc[:, c] - mean[bins]))
    return float(np.percentile(residual, 90)) < cfg.gray_chroma


def _levels(image: np.ndarray, cfg: BaselineConfig) -> np.ndarray:
    """Pull a lifted black point down to ``black_target``, keeping each channel's white point fixed.

    Fading moves every tone toward a bright paper level, so shadows lift while highlights barely move:
    anchoring at the white point undoes that without guessing a colour balance. Percentile stretches per
    channel and gray-world balance both lost PSNR in tuning (natural photos are not gray on average).
    """
    x = image.astype(np.float32)
    chans = x.reshape(-1, 1) if x.ndim == 2 else x.reshape(-1, 3)
    white = np.percentile(chans, cfg.white_pct, axis=0)
    black = float(np.percentile(chans[:, 0] if x.ndim == 2 else chans @ _LUMA, cfg.black_pct))
    target = min(black, cfg.black_target)
    gain = np.clip((white - target) / np.maximum(white - black, 1.0), 1.0, cfg.max_gain)
    return np.clip(white - (white - x) * gain + 0.5, 0, 255).astype(np.uint8)
