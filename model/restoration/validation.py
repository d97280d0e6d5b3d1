"""A fixed, seeded validation set of degraded photos, and how restorers score on it.

Sets (``VAL_SETS``, and ``defects``: the engine's scratches, cracks and specks alone, for detection): the
engine's ``light``, ``medium`` and ``heavy`` presets (each pair keeps its exact defect mask); ``published``,
the Bringing-Old-Photos-Back-to-Life recipe from its own, independent module (thin scratches on every other
photo), so the model is also judged on degradations it was not trained to invert; and ``clean``, the
untouched photos, where a restorer must do no harm. The same folder, seed and sets always give the same
copies, so numbers from different runs, checkpoints and the classical baseline are comparable.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from model.degradation.engine import (
    PRESETS,
    DegradationPlan,
    Op,
    _capture,
    _damage,
    _scan,
    apply_plan,
    image_to_tensor,
    sample_plan,
    tensor_to_image,
)
from model.degradation.published import degrade_published
from model.formats import IMAGE_EXTENSIONS
from model.metrics import hf_ratio, psnr, ssim
from model.restoration.inference import restore_tensor

Restore = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) uint8 -> (H, W, 3) uint8
VAL_SETS = ("light", "medium", "heavy", "published", "clean")
# Seed stream per set, by name (not by position): adding a set never changes another set's copies.
_SET_KEYS = {"medium": 0, "heavy": 1, "light": 2, "published": 3, "clean": 4, "defects": 5}


@dataclass(frozen=True)
class ValPair:
    name: str
    severity: str
    degraded: np.ndarray  # (H, W, 3) uint8
    clean: np.ndarray  # (H, W, 3) uint8, the target (grayscale when the plan made the print grayscale)
    mask: np.ndarray | None = None  # (H, W) bool: the pixels the engine's defects changed (None: unknown)


def build_val_set(
    folder: Path | list[Path],
    sets: tuple[str, ...] = ("medium", "heavy"),
    seed: int = 0,
    limit: int | None = None,
    max_side: int | None = None,
) -> list[ValPair]:
    """Degrade every image in ``folder`` (or the listed photos; sorted, at most ``limit``) once per set with
    a fixed seed. ``max_side`` centre-crops larger photos to that square so validation cost stays bounded."""
    unknown = [name for name in sets if name not in _SET_KEYS]
    if unknown:
        raise ValueError(f"unknown validation set(s) {unknown}; choose from {list(VAL_SETS)}")
    listed = folder if isinstance(folder, list) else folder.iterdir()
    paths = sorted(p for p in listed if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
    if not paths:
        raise ValueError(f"{folder}: no validation images")
    pairs = []
    for index, path in enumerate(paths):
        with Image.open(path) as image:
            clean = image_to_tensor(_centre_crop(image, max_side))  # (3, H, W) in [0, 1]
        clean_u8 = _uint8(clean)
        for name in sets:
            rng = np.random.default_rng([seed, index, _SET_KEYS[name]])
            if name == "clean":
                pairs.append(ValPair(path.stem, name, clean_u8, clean_u8, np.zeros(clean_u8.shape[:2], bool)))
            elif name == "published":
                degraded, target, _ = degrade_published(clean_u8, rng, scratches=index % 2 == 1)
                pairs.append(ValPair(path.stem, name, degraded, target))
            else:
                plan = _defects_plan(rng, *clean.shape[1:]) if name == "defects" else None
                plan = plan or sample_plan(rng, clean.shape[1], clean.shape[2], name)
                degraded, target, mask = apply_plan(clean, plan)
                pairs.append(
                    ValPair(path.stem, name, _uint8(degraded), _uint8(target), mask[0].cpu().numpy() > 0)
                )
    return pairs


def _defects_plan(rng: np.random.Generator, height: int, width: int) -> DegradationPlan:
    """The detection set: the engine's scratches, emulsion cracks and specks (dust, hairs) at medium to
    heavy counts over light capture and scan artefacts, and no tone change: the exact mask is the answer."""
    sev = dataclasses.replace(
        PRESETS["medium"],
        stains=Op(0, 1, 1),
        creases=Op(0, 1, 1),
        tears=Op(0, 1, 1),
        scratches=Op(0.8, 2, 12),
        cracks=Op(0.7, 1, 3),
        dust=Op(0.8, 10, 150),
    )
    scale = min(height, width) / 512
    blur = min(max(scale, 0.5), 2.0)
    damage = _damage(rng, sev, height, width, scale) or _damage(rng, PRESETS["heavy"], height, width, scale)
    ops = _capture(rng, PRESETS["light"], blur) + damage + _scan(rng, PRESETS["light"], blur)
    return DegradationPlan(height, width, "defects", tuple(ops))


PSNR_CAP = 99.0  # an output equal to its target has infinite PSNR; capped so means stay finite


@dataclass(frozen=True)
class Scores:
    psnr: float  # mean over the set's photos
    ssim: float
    hf_ratio: float  # metrics.hf_ratio: fine detail kept, restored / clean
    psnr_min: float  # the worst photo: "does no harm" is a promise about every photo, not the mean


def score(pairs: list[ValPair], restore: Restore | None = None) -> dict[str, Scores]:
    """Mean PSNR / SSIM / texture (and worst PSNR) per set of ``restore(degraded)`` against clean (the
    degraded input itself if None)."""
    by_severity: dict[str, list[tuple[float, float, float]]] = {}
    for pair in pairs:
        out = pair.degraded if restore is None else restore(pair.degraded)
        scores = (min(psnr(out, pair.clean), PSNR_CAP), ssim(out, pair.clean), hf_ratio(out, pair.clean))
        by_severity.setdefault(pair.severity, []).append(scores)
    return {
        k: Scores(*np.mean(np.array(v), axis=0).tolist(), psnr_min=float(np.min(np.array(v)[:, 0])))
        for k, v in by_severity.items()
    }


def compare(pairs: list[ValPair], restorers: dict[str, Restore | None]) -> dict[str, dict[str, Scores]]:
    """``{method: {severity: Scores}}`` for each named restorer (None: the degraded input itself)."""
    return {name: score(pairs, restore) for name, restore in restorers.items()}


def evaluate(
    folder: Path,
    generator: torch.nn.Module,
    baseline: bool = True,
    seed: int = 0,
    limit: int | None = None,
    max_side: int | None = None,
    sets: tuple[str, ...] = VAL_SETS,
) -> dict[str, dict[str, Scores]]:
    """The MODEL.md table: ``{"degraded" | "baseline" | "model": {set: Scores}}`` on the fixed degraded
    copies of ``folder``."""
    from model.restoration.baseline import restore_classical  # OpenCV: only loaded by callers that want it

    restorers: dict[str, Restore | None] = {"degraded": None}
    if baseline:
        restorers["baseline"] = restore_classical
    restorers["model"] = generator_restorer(generator)
    return compare(build_val_set(folder, sets, seed=seed, limit=limit, max_side=max_side), restorers)


def generator_restorer(generator: torch.nn.Module, autocast_dtype: torch.dtype | None = None) -> Restore:
    """A ``Restore`` running a generator on a whole image (validation photos are small enough)."""
    device = next(generator.parameters()).device

    def restore(pixels: np.ndarray) -> np.ndarray:
        # torch.tensor copies: arrays from PIL are read-only.
        x = torch.tensor(pixels).permute(2, 0, 1)[None].float().div(255).to(device)
        restored, _ = restore_tensor(generator, x, autocast_dtype)
        return _uint8(restored[0])

    return restore


def grid(pairs: list[ValPair], restore: Restore, count: int = 4, side: int = 192) -> Image.Image:
    """Before / after / clean rows for the first ``count`` pairs, each panel ``side`` px: saved with every
    training checkpoint so a person can see what the numbers mean."""
    rows = []
    for pair in pairs[:count]:
        panels = [pair.degraded, restore(pair.degraded), pair.clean]
        rows.append(np.concatenate([_thumb(p, side) for p in panels], axis=1))
    return Image.fromarray(np.concatenate(rows, axis=0))


def _thumb(pixels: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC))


def _centre_crop(image: Image.Image, max_side: int | None) -> Image.Image:
    if max_side is None:
        return image
    w, h = image.size
    cw, ch = min(w, max_side), min(h, max_side)
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


def _uint8(t) -> np.ndarray:
    return np.asarray(tensor_to_image(t.cpu()))
