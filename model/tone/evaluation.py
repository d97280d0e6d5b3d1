"""The tone table (docs/MODEL.md, "Tone"): what ``--tone auto`` adds after the default repair, against the
classical levels step and the oracle, on fixed validation copies; and the photos it is judged on.

Methods per set, each after the default repair (``--fill mask``) unless named: the degraded input; the repair
(``--tone keep``); the repair + the classical baseline's tone step (``baseline.classical_tone``); the repair +
``--tone auto`` (and without its margins, ``estimator.FADE_MARGIN``); ``--tone auto`` alone on the input
(``patina tone``: on clean photos, the stage's own harm); the whole classical baseline; and the oracle, the
best per-image affine colour fit of the repair to the clean photo (its tone-invariant PSNR: no global
correction can beat it by much). Reported: the mean and the lowest PSNR over the set's photos.

Which photos: ``is_tone_validation`` holds out a tenth of the training folders by a hash of the file name
(the estimator never trains on them), and ``colourful_photos`` picks, among held-out clean photos, those a
careless auto-levels would ruin: warm light, sunsets and strong single colours.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from PIL import Image
from skimage.color import rgb2lab

from model.metrics import psnr, tone_invariant_psnr
from model.restoration.baseline import classical_tone, restore_classical
from model.restoration.fill import only_in_mask
from model.restoration.scoring import DEFECT_THRESHOLD, generator_outputs
from model.restoration.validation import PSNR_CAP, ValPair
from model.tone.estimator import ToneEstimator, estimate
from model.tone.physics import correct

HELD_OUT = 10  # one training photo in ten is held out from the estimator's training


def is_tone_validation(name: str) -> bool:
    """True for the held-out tenth of a training folder, by a CRC of the file name (adding photos moves
    none)."""
    return zlib.crc32(PurePosixPath(name).name.encode()) % HELD_OUT == 0


def colourful_photos(paths: list[Path], count: int) -> list[Path]:
    """The ``count`` photos whose thumbnails are warmest (mean b*) or most strongly of one colour (mean
    chroma), alternating between the two rankings: the clean prints most like a yellowed or cast one."""
    warmth, chroma = [], []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((64, 64))
            lab = rgb2lab(np.asarray(image, np.float32) / 255).reshape(-1, 3)
        warmth.append(float(lab[:, 2].mean()))
        chroma.append(float(np.hypot(lab[:, 1], lab[:, 2]).mean()))
    by_warmth = [paths[i] for i in np.argsort(warmth)[::-1]]
    by_chroma = [paths[i] for i in np.argsort(chroma)[::-1]]
    picked: list[Path] = []
    for a, b in zip(by_warmth, by_chroma, strict=True):
        for path in (a, b):
            if path not in picked and len(picked) < count:
                picked.append(path)
    return picked


@dataclass
class ToneScores:
    psnr: float  # mean over the set's photos (each capped at PSNR_CAP)
    lowest: float
    photos: int


def _auto(
    estimator: ToneEstimator, cap: float, margins: bool = True
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def apply(repaired: np.ndarray, degraded: np.ndarray) -> np.ndarray:
        def tensor(pixels: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(pixels.copy()).permute(2, 0, 1).float().div(255)

        # Read from the input, as the pipeline does.
        correction = estimate(estimator, tensor(degraded), cap, margins)
        out = correct(tensor(repaired), correction)
        return (out.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.uint8)

    return apply


def tone_table(
    pairs: list[ValPair],
    generator: torch.nn.Module,
    estimator: ToneEstimator,
    cap: float = 1.0,
    baseline: bool = True,
) -> dict[str, dict[str, ToneScores]]:
    """``{method: {set: ToneScores}}`` over ``pairs`` (see the module docstring for the methods)."""
    auto, unguarded = _auto(estimator, cap), _auto(estimator, cap, margins=False)
    rows: dict[str, dict[str, list[float]]] = {}
    for pair in pairs:
        restored, probability = generator_outputs(generator, pair.degraded)
        repaired = only_in_mask(restored, pair.degraded, probability > DEFECT_THRESHOLD)
        scores = {
            "degraded": psnr(pair.degraded, pair.clean),
            "repair": psnr(repaired, pair.clean),
            "repair + levels": psnr(classical_tone(repaired), pair.clean),
            "repair + auto": psnr(auto(repaired, pair.degraded), pair.clean),
            "repair + auto, no margins": psnr(unguarded(repaired, pair.degraded), pair.clean),
            # ``patina tone`` on the input: on clean photos, the tone stage's own harm.
            "auto alone": psnr(auto(pair.degraded, pair.degraded), pair.clean),
            "oracle affine": tone_invariant_psnr(repaired, pair.clean),
        }
        if baseline:
            scores["baseline"] = psnr(restore_classical(pair.degraded), pair.clean)
        for method, value in scores.items():
            rows.setdefault(method, {}).setdefault(pair.severity, []).append(min(value, PSNR_CAP))
    return {
        method: {name: ToneScores(float(np.mean(v)), float(np.min(v)), len(v)) for name, v in by_set.items()}
        for method, by_set in rows.items()
    }
