"""The classical fill of a defect mask: OpenCV's inpainting (Telea's fast marching, or Navier-Stokes), the
floor a learned fill must beat. Images are (H, W, 3) uint8; masks (H, W) bool."""

from __future__ import annotations

import cv2
import numpy as np

METHODS = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}


def classical_fill(image: np.ndarray, mask: np.ndarray, radius: int = 3, method: str = "telea") -> np.ndarray:
    """``image`` with the pixels of ``mask``, grown by 1 px (a soft defect edge is part of the defect),
    replaced by OpenCV inpainting from their surroundings; pixels away from the mask are returned exactly."""
    if method not in METHODS:
        raise ValueError(f"unknown fill method {method!r}; choose one of {sorted(METHODS)}")
    if not mask.any():
        return image.copy()
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((3, 3), np.uint8))
    return cv2.inpaint(np.ascontiguousarray(image), grown, radius, METHODS[method])
