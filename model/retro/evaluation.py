"""How well looks are transferred and how much of the photo survives them (``patina retro evaluate``).

- Transfer fidelity where the truth is known: for photo pair (A, B) and parameters p drawn by
  ``sample_params``, the reference is A rendered with p and the target is B rendered with p. A method sees
  (B, reference) and is scored by PSNR / SSIM against the target: the reference-guided model and the
  classical baselines alike. The encoder's reading of each reference is scored against the true p.
- Content preservation per era: SSIM of the luminance of the era's print against the photo's luminance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.formats import IMAGE_EXTENSIONS
from model.metrics import luma, psnr, ssim
from model.retro import targets
from model.retro.eras import ERAS
from model.retro.generator import RetroModel
from model.retro.params import RetroParams
from model.retro.render import render
from model.retro.sampling import sample_params

Transfer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (photo, reference) -> restyled photo, uint8


@dataclass(frozen=True)
class TransferPair:
    name: str
    photo: np.ndarray  # B, (H, W, 3) uint8
    reference: np.ndarray  # A rendered with params
    target: np.ndarray  # B rendered with params
    params: RetroParams


def load_photos(folder: Path, limit: int | None = None, max_side: int = 384) -> list[tuple[str, np.ndarray]]:
    """Sorted photos of ``folder`` (at most ``limit``), each scaled to a long side of at most ``max_side``."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
    if not paths:
        raise ValueError(f"{folder}: no photos")
    photos = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                photos.append((path.stem, np.asarray(image)))
        except OSError as exc:  # a scoring set must be whole: say which file is not an image
            raise ValueError(f"{path}: not a readable image ({exc})") from None
    return photos


def transfer_set(photos: list[tuple[str, np.ndarray]], seed: int = 0) -> list[TransferPair]:
    """One pair per photo: photo i is B, photo i+1 lends the reference, parameters from (seed, i)."""
    if len(photos) < 2:
        raise ValueError("look transfer needs at least two photos: one lends the look, another receives it")
    pairs = []
    for i, (name, photo) in enumerate(photos):
        params = sample_params(np.random.default_rng([seed, i]))
        source = photos[(i + 1) % len(photos)][1]
        reference, target = (_render(x, params, seed=i) for x in (source, photo))
        pairs.append(TransferPair(name, photo, reference, target, params))
    return pairs


def score_transfer(pairs: list[TransferPair], transfer: Transfer) -> dict[str, float]:
    """Mean PSNR and SSIM of ``transfer(photo, reference)`` against the target, and the worst PSNR."""
    scores = np.array(
        [(psnr(out := transfer(p.photo, p.reference), p.target), ssim(out, p.target)) for p in pairs]
    )
    return {
        "psnr": float(scores[:, 0].mean()),
        "ssim": float(scores[:, 1].mean()),
        "psnr_min": float(scores[:, 0].min()),
    }


def model_transfer(model: RetroModel, autocast_dtype: torch.dtype | None = None) -> Transfer:
    """A ``Transfer`` by the reference-guided model (the encoder reads the reference, the generator
    restyles the photo), on the model's device."""
    device = next(model.parameters()).device

    def transfer(photo: np.ndarray, reference: np.ndarray) -> np.ndarray:
        x, ref = (_tensor(a, device) for a in (photo, reference))
        with torch.autocast(
            device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
        ):
            out = model.transfer(x, ref)
        return _uint8(out[0].float())

    return transfer


@torch.no_grad()
def parameter_recovery(model: RetroModel, pairs: list[TransferPair]) -> dict[str, float]:
    """How well the encoder reads each reference's true parameters: mean absolute error per parameter on
    its [0, 1] scale (targets.RANGES), overall, and the sensitivity class accuracy."""
    device = next(model.parameters()).device
    errors, correct = [], 0
    for pair in pairs:
        style = model.encoder(_tensor(pair.reference, device))
        errors.append((style.params[0].float().cpu() - targets.to_vector(pair.params)).abs())
        correct += int(style.sensitivity_logits[0].argmax()) == targets.sensitivity_index(pair.params)
    per = torch.stack(errors).mean(0)
    return {
        "mean_abs_error": float(per.mean()),
        "sensitivity_accuracy": correct / len(pairs),
        **{f"error:{name}": float(e) for name, e in zip(targets.NAMES, per, strict=True)},
    }


def content_preservation(photos: list[tuple[str, np.ndarray]], seed: int = 0) -> dict[str, float]:
    """Per era: mean SSIM of the print's luminance against the photo's."""
    return {
        name: float(np.mean([ssim(_luma(_render(photo, params, seed)), _luma(photo)) for _, photo in photos]))
        for name, params in ERAS.items()
    }


def _render(photo: np.ndarray, params: RetroParams, seed: int) -> np.ndarray:
    out = render(torch.from_numpy(photo.astype(np.float32) / 255).permute(2, 0, 1), params, seed)
    return np.clip(np.rint(out.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)


def _tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    return (
        torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    ).to(device)


def _uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return np.clip(np.rint((image.permute(1, 2, 0).cpu().numpy() + 1) * 127.5), 0, 255).astype(np.uint8)


def _luma(image: np.ndarray) -> np.ndarray:
    """uint8 luma, what SSIM is scored on."""
    return np.clip(np.rint(luma(image)), 0, 255).astype(np.uint8)
