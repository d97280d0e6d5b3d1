"""Classical reference-guided colour transfer: the bars the retro GAN must clear (docs/RETRO.md).

- ``reinhard``: Reinhard et al., *Color Transfer between Images* (2001): match each channel's mean and
  standard deviation in a decorrelated colour space (CIELAB here, as darktable's colour mapping does).
- ``histogram``: per-channel histogram matching in RGB (scikit-image's ``match_histograms``).
Both take (H, W, 3) uint8 arrays: the photo to restyle and a reference with the look.
"""

from __future__ import annotations

import warnings

import numpy as np
from skimage.color import lab2rgb, rgb2lab
from skimage.exposure import match_histograms


def reinhard(photo: np.ndarray, reference: np.ndarray) -> np.ndarray:
    source, ref = rgb2lab(photo), rgb2lab(reference)
    mean_s, std_s = source.mean((0, 1)), source.std((0, 1))
    mean_r, std_r = ref.mean((0, 1)), ref.std((0, 1))
    out = (source - mean_s) * (std_r / np.maximum(std_s, 1e-6)) + mean_r
    with warnings.catch_warnings():  # colours pushed outside sRGB are clipped, which is what we want
        warnings.simplefilter("ignore", UserWarning)
        return _uint8(lab2rgb(out))


def histogram(photo: np.ndarray, reference: np.ndarray) -> np.ndarray:
    return _uint8(match_histograms(photo, reference, channel_axis=-1) / 255)


def _uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)


BASELINES = {"reinhard": reinhard, "histogram": histogram}
