"""The detect-and-fill table (docs/MODEL.md): how well the model finds defects, how well each fill repairs
them, and whether anything else moved, on the fixed validation copies of ``validation.build_val_set``.

Methods, each scored on every set: the degraded input; the classical baseline; ``model`` (the generator's
own output: its learned fill); ``model mask + telea`` (the generator's defect mask, filled by OpenCV from the
input: detect, then a classical fill); ``model + telea`` (the generator's output with its mask filled by
OpenCV: ``patina restore --fill telea``); ``model in mask`` (the generator's output on its mask only, the
input elsewhere: ``--fill mask``, the default); and ``true mask + telea`` where the engine's exact mask is
known (the floor of a classical fill, given a perfect detector). Metrics per set: PSNR, tone-invariant PSNR
(after the best per-image affine colour fit), SSIM, PSNR inside the true defects, and the detection counts of
each method's mask against the true one (pooled precision / recall / F1 at 1 px tolerance; the share of pixels
flagged on clean photos).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.metrics import detection_scores, f1_from_counts, masked_psnr, psnr, ssim, tone_invariant_psnr
from model.restoration.fill import classical_fill, only_in_mask
from model.restoration.inference import restore_tensor
from model.restoration.validation import PSNR_CAP, ValPair

DEFECT_THRESHOLD = 0.5  # the mask a fill acts on: defect probability above this


@dataclass
class RepairScores:
    psnr: float
    tone_invariant_psnr: float
    ssim: float
    inside_psnr: float | None  # mean over photos with defects, PSNR inside the true mask
    precision: float | None  # of the method's mask against the true one (None: the method has no mask)
    recall: float | None
    f1: float | None
    flagged: float | None  # share of pixels the method's mask flags
    photos: int


def generator_outputs(generator: torch.nn.Module, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(restored (H, W, 3) uint8, defect probability (H, W) float32) of one image, in one forward."""
    device = next(generator.parameters()).device
    x = torch.tensor(pixels).permute(2, 0, 1)[None].float().div(255).to(device)
    restored, mask = restore_tensor(generator, x)
    out = (restored[0].permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
    return out, mask[0, 0].float().cpu().numpy()


def repair_table(
    pairs: list[ValPair],
    generator: torch.nn.Module,
    baseline: bool = True,
    threshold: float = DEFECT_THRESHOLD,
) -> dict[str, dict[str, RepairScores]]:
    """``{method: {set: RepairScores}}`` over ``pairs``; the model's mask is its probability > ``threshold``
    (the pipeline's is DEFECT_THRESHOLD: another value shows the precision-recall trade, nothing more)."""
    from model.restoration.baseline import defect_mask_classical, restore_classical

    rows: dict[str, dict[str, list]] = {}
    for pair in pairs:
        restored, probability = generator_outputs(generator, pair.degraded)
        detected = probability > threshold
        outputs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {
            "degraded": (pair.degraded, None),
            "model": (restored, detected),
            "model mask + telea": (classical_fill(pair.degraded, detected), detected),
            "model + telea": (classical_fill(restored, detected), detected),  # the pipeline's --fill telea
            "model in mask": (
                only_in_mask(restored, pair.degraded, detected),
                detected,
            ),  # --fill model --keep
        }
        if baseline:
            outputs["baseline"] = (restore_classical(pair.degraded), defect_mask_classical(pair.degraded) > 0)
        if pair.mask is not None and pair.mask.any():
            outputs["true mask + telea"] = (classical_fill(pair.degraded, pair.mask), pair.mask)
        for method, (out, mask) in outputs.items():
            rows.setdefault(method, {}).setdefault(pair.severity, []).append(_row(out, mask, pair))
    return {method: {name: _summary(v) for name, v in by_set.items()} for method, by_set in rows.items()}


def _row(out: np.ndarray, mask: np.ndarray | None, pair: ValPair) -> dict:
    true = pair.mask
    row = {
        "psnr": min(psnr(out, pair.clean), PSNR_CAP),
        "tone_invariant_psnr": min(tone_invariant_psnr(out, pair.clean), PSNR_CAP),
        "ssim": ssim(out, pair.clean),
        "inside": None if true is None else masked_psnr(out, pair.clean, true),
        "counts": None,
        "flagged": None if mask is None else float(mask.mean()),
    }
    if mask is not None and true is not None:
        row["counts"] = detection_scores(mask, true)
    return row


def _summary(rows: list[dict]) -> RepairScores:
    inside = [min(r["inside"], PSNR_CAP) for r in rows if r["inside"] is not None]
    counts = [r["counts"] for r in rows if r["counts"] is not None]
    flagged = [r["flagged"] for r in rows if r["flagged"] is not None]
    precision = recall = f1 = None
    if counts:
        precision, recall, f1 = f1_from_counts(*np.sum(np.array(counts), axis=0).tolist())
    return RepairScores(
        psnr=float(np.mean([r["psnr"] for r in rows])),
        tone_invariant_psnr=float(np.mean([r["tone_invariant_psnr"] for r in rows])),
        ssim=float(np.mean([r["ssim"] for r in rows])),
        inside_psnr=float(np.mean(inside)) if inside else None,
        precision=precision,
        recall=recall,
        f1=f1,
        flagged=float(np.mean(flagged)) if flagged else None,
        photos=len(rows),
    )
