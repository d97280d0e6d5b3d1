"""Training the tone estimator on thumbnails: the engine's ageing on clean photos, judged after the inverse.

A pair is a clean photo (long side 256 px) degraded by a whole engine plan (capture, ageing, damage, scan) or
left as it is (a quarter of the pairs: "leave it" must be learned as well as "undo it"), both kept as
64 px thumbnails. The target keeps any sepia toning the plan applied (``auto`` keeps a toned print toned).
The loss is the log of each thumbnail's mean squared error after the inverse, so a nearly clean print weighs
as much as a ruined one, and the estimator learns the physics end to end through ``physics.invert``.

It trains in minutes on a 2-core CPU, so it is a plain loop, not a Ray Train job.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.degradation import aging
from model.degradation.engine import apply_plan, image_to_tensor, sample_plan
from model.tone.estimator import ToneEstimator, applied, features, thumbnail
from model.tone.physics import invert

PAIR_SIDE = 256
SEVERITIES = (("none", 0.25), ("light", 0.25), ("medium", 0.3), ("heavy", 0.2))
LOG_FLOOR = 2e-5  # ~47 dB: an exact "leave it" is not rewarded beyond this


@dataclass
class TonePairs:
    degraded: torch.Tensor  # (N, 3, THUMBNAIL, THUMBNAIL) float in [0, 1]
    target: torch.Tensor  # the clean photo, sepia toning kept
    photo: torch.Tensor  # (N,) index of the source photo: hold out by photo, never by copy
    severity: torch.Tensor  # (N,) index into SEVERITIES


def tone_pairs(paths: Iterable[Path], copies: int, seed: int = 0) -> TonePairs:
    """``copies`` thumbnail pairs per photo, each drawn from a seed of (seed, file name, copy)."""
    names = [s for s, _ in SEVERITIES]
    weights = np.cumsum([p for _, p in SEVERITIES])
    degraded, target, photo, severity = [], [], [], []
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((PAIR_SIDE, PAIR_SIDE))
            clean = image_to_tensor(image)
        for copy in range(copies):
            rng = np.random.default_rng([seed, zlib.crc32(Path(path).name.encode()), copy])
            kind = int(np.searchsorted(weights, rng.random(), side="right"))
            aged, kept = clean, clean
            if names[kind] != "none":
                plan = sample_plan(rng, clean.shape[1], clean.shape[2], names[kind])
                aged, kept, _ = apply_plan(clean, plan)
                for name, params in plan.ops:
                    if name == "sepia":
                        kept = aging.sepia(kept, **params)
            degraded.append(thumbnail(aged)[0])
            target.append(thumbnail(kept)[0])
            photo.append(index)
            severity.append(kind)
    return TonePairs(torch.stack(degraded), torch.stack(target), torch.tensor(photo), torch.tensor(severity))


def corrected(
    estimator: ToneEstimator, thumbs: torch.Tensor, feats: torch.Tensor | None = None
) -> torch.Tensor:
    """The estimator's inverse applied to ``thumbs`` (B, 3, h, w), differentiably."""
    params = estimator(features(thumbs) if feats is None else feats, thumbs)
    return invert(thumbs, *applied(params))


def log_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return torch.log((output - target).pow(2).mean((1, 2, 3)) + LOG_FLOOR)


def train_estimator(
    pairs: TonePairs,
    steps: int = 3000,
    batch: int = 256,
    lr: float = 2e-3,
    hidden: int = 256,
    conv: int = 0,
    harm: float = 0.0,
    seed: int = 0,
) -> ToneEstimator:
    """Fit a ``ToneEstimator`` to ``pairs`` (Adam, cosine schedule); features are read once. ``harm`` weighs
    an extra penalty on every pair the correction leaves further from its target than the input was: a
    wrong correction of a good print costs the archivist more than a missed one."""
    torch.manual_seed(seed)
    feats = features(pairs.degraded)
    estimator = ToneEstimator(hidden, conv)
    estimator.mean.copy_(feats.mean(0))
    estimator.std.copy_(feats.std(0).clamp_min(1e-4))
    optimiser = torch.optim.Adam(estimator.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        pick = torch.randint(len(feats), (batch,), generator=generator)
        degraded, target = pairs.degraded[pick], pairs.target[pick]
        if estimator.conv:  # a mirrored print has the same ageing: free variety for the CNN
            flip = torch.rand(len(pick), generator=generator) < 0.5
            degraded = torch.where(flip[:, None, None, None], degraded.flip(3), degraded)
            target = torch.where(flip[:, None, None, None], target.flip(3), target)
        after = log_mse(corrected(estimator, degraded, feats[pick]), target)
        worse = (after - log_mse(degraded, target)).clamp_min(0)
        loss = (after + harm * worse).mean()
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
    return estimator.eval()
