"""The classical fill of a defect mask: OpenCV's inpainting (Telea's fast marching, or Navier-Stokes), the
floor a learned fill must beat. Images are (H, W, 3) uint8; masks (H, W) bool."""

from __future__ import annotations

import cv2
import numpy as np

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def grown(mask: np.ndarray) -> np.ndarray:
    """``mask`` (H, W) grown by 1 px: a soft defect edge is part of the defect. uint8 0/1, as OpenCV wants."""
    return cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))


def only_in_mask(restored: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``restored`` on the pixels of ``mask`` (grown by 1 px), ``original`` exactly everywhere else: the
    ``--fill mask`` output. Both (H, W, C) of one dtype; mask (H, W) bool."""
    return np.where(grown(mask)[..., None] > 0, restored, original)


def classical_fill(image: np.ndarray, mask: np.ndarray, radius: int = 3, method: str = "telea") -> np.ndarray:
    """``image`` with the pixels of ``mask``, grown by 1 px (a soft defect edge is part of the defect),
    replaced by OpenCV inpainting from their surroundings; pixels away from the mask are returned exactly."""
    if method not in METHODS:
        raise ValueError(f"unknown fill method {method!r}; choose one of {sorted(METHODS)}")
    if not mask.any():
        return image.copy()
    return cv2.inpaint(np.ascontiguousarray(image), grown(mask), radius, METHODS[method])
