"""What the trainer needs from each model family: its GAN, its training samples, its validation.

``driver.train_loop`` is family-agnostic (budget, checkpoints, resume, Ray Train); a family plugs in here
with four functions. Imports are lazy: a restoration run never loads the retro renderer, and the other way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

VAL_SEVERITIES = ("light", "medium", "heavy")


@dataclass(frozen=True)
class FamilyTraining:
    make_gan: Callable[..., Any]  # (cfg, device, wrap, autocast_dtype) -> a model.gan.GANTraining
    make_pool: Callable[..., Any]  # (photos, cfg, rank, device) -> a pool with .batch(step, batch_size)
    val_set: Callable[[Path, int | None, int], Any]  # (folder, limit, side) -> the fixed validation set
    validate: Callable[
        [Any, Any, str], dict[str, float]
    ]  # (gan, val set, folder for a grid) -> val_* metrics


def training(family_name: str) -> FamilyTraining:
    makers = {"restoration": _restoration, "retro": _retro}
    try:
        return makers[family_name]()
    except KeyError:
        raise ValueError(f"unknown model family {family_name!r}; choose one of {sorted(makers)}") from None


def _restoration() -> FamilyTraining:
    from model.restoration.gan import RestorationGAN
    from model.restoration.validation import build_val_set
    from pipeline.training.data import PairPool

    def make_pool(photos, cfg, rank, device, real=None):
        t, d = cfg.train, cfg.degradation
        return PairPool(
            photos,
            t.crop,
            d.mixture,
            t.seed,
            rank,
            t.pool_size,
            t.pool_refresh,
            device,
            real,
            d.real_fraction,
        )

    def val_set(folder: Path, limit: int | None, side: int):
        return build_val_set(folder, VAL_SEVERITIES, seed=0, limit=limit, max_side=side)

    return FamilyTraining(RestorationGAN, make_pool, val_set, _validate_restoration)


@torch.no_grad()
def _validate_restoration(gan, pairs, folder: str) -> dict[str, float]:
    """PSNR / SSIM of the EMA generator and of the degraded input on the fixed validation set."""
    from model.restoration.validation import generator_restorer, grid, score

    restore = generator_restorer(gan.ema, gan.autocast_dtype)
    model, degraded = score(pairs, restore), score(pairs, None)
    grid(pairs, restore).save(os.path.join(folder, "grid.png"))
    metrics = {}
    for severity in model:
        metrics[f"val_{severity}_psnr"], metrics[f"val_{severity}_ssim"] = (
            model[severity].psnr,
            model[severity].ssim,
        )
        metrics[f"val_{severity}_psnr_degraded"] = degraded[severity].psnr
        metrics[f"val_{severity}_ssim_degraded"] = degraded[severity].ssim
    metrics["val_psnr"] = float(np.mean([s.psnr for s in model.values()]))
    metrics["val_ssim"] = float(np.mean([s.ssim for s in model.values()]))
    metrics["val_hf_ratio"] = float(np.mean([s.hf_ratio for s in model.values()]))
    return metrics


def _retro() -> FamilyTraining:
    from model.retro.evaluation import load_photos, transfer_set
    from model.retro.gan import RetroGAN
    from pipeline.training.retro_pool import RetroPool

    def make_pool(photos, cfg, rank, device):
        t = cfg.train
        return RetroPool(photos, t.crop, t.seed, rank, t.pool_size, t.pool_refresh, device)

    def val_set(folder: Path, limit: int | None, side: int):
        return transfer_set(load_photos(folder, None if limit is None else max(limit, 2), side))

    return FamilyTraining(RetroGAN, make_pool, val_set, _validate_retro)


@torch.no_grad()
def _validate_retro(gan, pairs, folder: str) -> dict[str, float]:
    """Look transfer where the truth is known: PSNR / SSIM of the EMA model's output against the target,
    parameter error and sensitivity accuracy of its encoder, on the fixed validation pairs."""
    from model.retro.evaluation import model_transfer, parameter_recovery, score_transfer

    transfer = model_transfer(gan.ema, gan.autocast_dtype)
    scores = score_transfer(pairs, transfer)
    recovery = parameter_recovery(gan.ema, pairs)
    return {
        "val_psnr": scores["psnr"],
        "val_ssim": scores["ssim"],
        "val_psnr_untouched": score_transfer(pairs, lambda photo, _: photo)["psnr"],
        "val_param_error": recovery["mean_abs_error"],
        "val_sensitivity_accuracy": recovery["sensitivity_accuracy"],
    }
