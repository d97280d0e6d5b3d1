"""How well looks are transferred and how much of the photo survives them (``patina retro evaluate``).

- Transfer fidelity where the truth is known: for photo pair (A, B) and parameters p drawn by
  ``sample_params``, the reference is A rendered with p and the target is B rendered with p. A method sees
  (B, reference) and is scored by PSNR / SSIM against the target. The classical baselines are scored today;
  the reference-guided GAN will be scored the same way.
- Content preservation per era: SSIM of the luminance of the era's print against the photo's luminance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.degradation.aging import LUMA
from model.metrics import psnr, ssim
from model.retro.eras import ERAS
from model.retro.params import RetroParams
from model.retro.render import render
from model.retro.sampling import sample_params

Transfer = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (photo, reference) -> restyled photo, uint8
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True)
class TransferPair:
    name: str
    photo: np.ndarray  # B, (H, W, 3) uint8
    reference: np.ndarray  # A rendered with params
    target: np.ndarray  # B rendered with params
    params: RetroParams


def load_photos(folder: Path, limit: int | None = None, max_side: int = 384) -> list[tuple[str, np.ndarray]]:
    """Sorted photos of ``folder`` (at most ``limit``), each scaled to a long side of at most ``max_side``."""
    paths = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
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


def content_preservation(photos: list[tuple[str, np.ndarray]], seed: int = 0) -> dict[str, float]:
    """Per era: mean SSIM of the print's luminance against the photo's."""
    return {
        name: float(np.mean([ssim(_luma(_render(photo, params, seed)), _luma(photo)) for _, photo in photos]))
        for name, params in ERAS.items()
    }


def _render(photo: np.ndarray, params: RetroParams, seed: int) -> np.ndarray:
    out = render(torch.from_numpy(photo.astype(np.float32) / 255).permute(2, 0, 1), params, seed)
    return np.clip(np.rint(out.permute(1, 2, 0).numpy() * 255), 0, 255).astype(np.uint8)


def _luma(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image.astype(np.float32) @ np.array(LUMA, np.float32)), 0, 255).astype(np.uint8)
