"""``--tone auto`` without Ray: load the shipped estimator, read a whole image's ageing, undo it through one
LUT. The pipeline's actors and the folder tools call the same two functions."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from model.files import DEFAULT_TONE_ESTIMATOR, write_atomically
from model.tone.estimator import ToneEstimator, estimate
from model.tone.physics import ToneCorrection, correct


class ToneModelError(ValueError):
    """A tone estimator file that is missing or not one; the message is one line."""


def save_estimator(estimator: ToneEstimator, path: str | Path, **meta: object) -> None:
    """The estimator's weights and its input standardisation as safetensors; ``meta`` (training facts) and
    the hidden width in the header."""
    tensors = {k: v.detach().contiguous() for k, v in estimator.state_dict().items()}
    header = {
        "family": "tone",
        "hidden": str(estimator.hidden),
        "conv": str(estimator.conv),
        "meta": json.dumps(meta, sort_keys=True),
    }
    write_atomically(path, lambda out: out.write(save(tensors, header)))


def load_estimator(
    path: str | Path = DEFAULT_TONE_ESTIMATOR, device: str | torch.device = "cpu"
) -> ToneEstimator:
    """A saved ``ToneEstimator`` in eval mode; weights that are not finite or do not fit are refused."""
    try:
        with safe_open(str(path), "pt") as handle:
            header = handle.metadata() or {}
        tensors = load_file(str(path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise ToneModelError(f"{path}: not a tone estimator ({exc})") from None
    if header.get("family") != "tone":
        raise ToneModelError(f"{path}: not a tone estimator (family {header.get('family')!r})")
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise ToneModelError(f"{path}: the tone estimator's weights hold NaN or inf")
    estimator = ToneEstimator(int(header.get("hidden", 256)), int(header.get("conv", 0)))
    try:
        estimator.load_state_dict(tensors)
    except RuntimeError as exc:
        raise ToneModelError(
            f"{path}: weights do not fit a tone estimator ({str(exc).splitlines()[0]})"
        ) from None
    return estimator.to(device).eval()


def auto_tone(
    image: torch.Tensor, estimator: ToneEstimator, cap: float = 1.0
) -> tuple[torch.Tensor, ToneCorrection]:
    """(3, H, W) in [0, 1] -> (corrected image, the correction applied). The correction is read from the
    whole image, so every tile of it gets the same one."""
    correction = estimate(estimator, image, cap)
    return correct(image, correction), correction
