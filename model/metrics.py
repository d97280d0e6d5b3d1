"""Quality metrics. PSNR and SSIM come from scikit-image (a well-tested implementation, not hand-rolled);
defect-mask IoU is a two-liner."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from model.degradation.aging import LUMA


def psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    """PSNR in dB between two uint8 images of equal shape, (H, W) or (H, W, C), range [0, 255]."""
    _check_pair(restored, clean)
    if np.array_equal(restored, clean):
        return float("inf")
    return float(peak_signal_noise_ratio(clean, restored, data_range=255))


def ssim(restored: np.ndarray, clean: np.ndarray) -> float:
    """SSIM (Wang et al., 2004; 7x7 window) between two uint8 images, (H, W) or (H, W, C), range [0, 255]."""
    _check_pair(restored, clean)
    channel_axis = 2 if restored.ndim == 3 else None
    win = min(7, *restored.shape[:2])
    win -= 1 - win % 2  # odd window that fits tiny images
    return float(
        structural_similarity(clean, restored, data_range=255, channel_axis=channel_axis, win_size=win)
    )


def hf_ratio(restored: np.ndarray, clean: np.ndarray) -> float:
    """Texture measure that needs no pretrained network: high-frequency energy of ``restored`` over that of
    ``clean`` (sum of squared 3x3 Laplacian responses of the luma). 1.0 = as much fine detail as the clean
    photo; below 1 = smoothed away (typical of L1-trained restorers), above 1 = noise or invented texture."""
    _check_pair(restored, clean)
    energy = [float(np.sum(_laplacian(luma(x)) ** 2)) for x in (restored, clean)]
    return energy[0] / max(energy[1], 1e-6)


def luma(image: np.ndarray) -> np.ndarray:
    """Rec. 601 luma (the weights of Pillow's convert("L")) of an (H, W, 3+) image, float64; a 2-D image
    is its own."""
    x = image.astype(np.float64)
    return x if x.ndim == 2 else x[..., :3] @ np.asarray(LUMA)


def _laplacian(x: np.ndarray) -> np.ndarray:
    return 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]


def mask_iou(predicted: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of two defect masks (H, W), any numeric dtype; values above ``threshold``
    times the dtype's max (1 for floats, 255 for uint8) count as defect. Two empty masks score 1."""
    pred, true = _binary(predicted, threshold), _binary(target, threshold)
    union = np.logical_or(pred, true).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union)


def _binary(mask: np.ndarray, threshold: float) -> np.ndarray:
    scale = 255.0 if mask.dtype == np.uint8 else 1.0
    return mask.astype(np.float32) > threshold * scale


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if a.dtype != np.uint8 or b.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {a.dtype} and {b.dtype}")


def detection_scores(
    predicted: np.ndarray, target: np.ndarray, tolerance: int = 1
) -> tuple[int, int, int, int]:
    """Counts for precision and recall of a boolean defect mask (H, W) against the true one, with a
    ``tolerance`` px band (a thin crack's edge is a matter of anti-aliasing, not of detection): (flagged
    pixels within ``tolerance`` of a true one, flagged pixels, true pixels within ``tolerance`` of a flagged
    one, true pixels). Summed over photos, they give pooled precision = a / b and recall = c / d."""
    import cv2  # OpenCV only where masks are scored

    pred, true = predicted.astype(bool), target.astype(bool)
    kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    near_true = cv2.dilate(true.astype(np.uint8), kernel) > 0
    near_pred = cv2.dilate(pred.astype(np.uint8), kernel) > 0
    return int((pred & near_true).sum()), int(pred.sum()), int((true & near_pred).sum()), int(true.sum())


def f1_from_counts(hits: int, flagged: int, found: int, true: int) -> tuple[float, float, float]:
    """(precision, recall, F1) from pooled ``detection_scores`` counts; an empty side scores 1."""
    precision = hits / flagged if flagged else 1.0
    recall = found / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def masked_psnr(restored: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float | None:
    """PSNR over the pixels of a boolean (H, W) ``mask`` only (inside the defects); None for an empty mask."""
    _check_pair(restored, clean)
    if not mask.any():
        return None
    error = (restored.astype(np.float64) - clean.astype(np.float64))[mask]
    mse = float(np.mean(error**2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def tone_invariant_psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    """PSNR after the best per-image affine colour fit of ``restored`` to ``clean`` (3x3 matrix + offset,
    least squares): what is left once every global tone and colour difference is forgiven, so a local
    repair is judged on what it repairs, not on the fading it was told to keep."""
    _check_pair(restored, clean)
    x = restored.reshape(-1, restored.shape[-1] if restored.ndim == 3 else 1).astype(np.float64)
    y = clean.reshape(len(x), -1).astype(np.float64)
    design = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    fitted = np.clip(np.rint(design @ coef), 0, 255).astype(np.uint8).reshape(clean.shape)
    return psnr(fitted, clean)
