"""Two-stage restoration GAN training, one step at a time, callable without Ray (Ray Train wraps the same
step).

Stage 1, reconstruction (PSNR-oriented, the ESRGAN / Real-ESRGAN practice):
  L_G = w_rec * Charbonnier(restored, clean; v) + w_mse * MSE(restored, clean; v)
        + w_mask * BCE(mask_logits, mask)
  v = 1 + w_masked * dilate(mask), normalised to mean 1: defect pixels weigh more (the fill is judged)
Stage 2, adversarial fine-tune from stage 1, once ``progress >= train.gan_start``:
  D:  L_D = adv(D(clean | degraded), real) + adv(D(restored.detach() | degraded), fake)
  G:  L_G = stage 1 terms + w_adv * adv(D(restored | degraded)) + w_fm * FM(D(restored), D(clean))
``progress`` is the fraction of the run's budget done (steps, or training wall time): the stage switch and
the learning rates (warm-up, then cosine decay within each stage) follow the budget, however it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.discriminator import Discriminator
from model.gan import GANTraining, stage_of
from model.losses import DefectMaskLoss
from model.restoration.config import RestorationConfig
from model.restoration.generator import Generator


@dataclass
class Batch:
    """Training batch, all (B, C, H, W) on one device: degraded/clean RGB in [-1, 1], mask in {0, 1};
    ``judged`` ({0, 1}, optional) the pixels the losses may judge (real-photo pairs: the painted defects)."""

    degraded: torch.Tensor
    clean: torch.Tensor
    defect_mask: torch.Tensor
    judged: torch.Tensor | None = None


class RestorationGAN(GANTraining):
    """G (the restoration generator), D (the conditional multi-scale PatchGAN), the EMA of G, their
    optimizers and the losses. ``wrap`` lets a caller (Ray Train) wrap G and D for DDP."""

    def __init__(
        self,
        cfg: RestorationConfig,
        device: str | torch.device = "cpu",
        wrap: Callable[[nn.Module], nn.Module] | None = None,
        autocast_dtype: torch.dtype | None = None,
    ):
        super().__init__(
            cfg, Generator(cfg.generator), Discriminator(cfg.discriminator), device, wrap, autocast_dtype
        )
        self.mask_loss = DefectMaskLoss(cfg.train.losses.mask_pos_weight).to(self.device)

    def train_step(self, batch: Batch, progress: float | None = None) -> dict[str, float]:
        """One step of the stage ``progress`` (default: step / steps) falls in. Returns the loss terms."""
        stage, losses = self.begin_step(progress)
        w = self.cfg.train.losses
        degraded = batch.degraded.contiguous(memory_format=torch.channels_last)
        self.generator.train()
        with self._autocast():
            restored, mask_logits = self.generator(degraded)
        # D learns what a clean photo looks like: a real print's target is not one, so its pairs stay out.
        clean_rows: slice | torch.Tensor = slice(None)
        gan_rows = stage == 2
        if batch.judged is not None:
            clean_rows = batch.judged.flatten(1).amin(1) > 0
            gan_rows = gan_rows and bool(clean_rows.any())
        gan_batch = (
            (batch.clean[clean_rows], restored[clean_rows], batch.degraded[clean_rows]) if gan_rows else ()
        )
        if gan_rows:  # Discriminator: clean pairs vs detached fakes.
            self.discriminator_step(*gan_batch, losses)

        weight = defect_weight(batch.defect_mask, w.masked, batch.judged)
        loss_rec = self.reconstruction(restored.float(), batch.clean, weight)
        loss_mse = (weight * (restored.float() - batch.clean) ** 2).mean()
        loss_mask = self.mask_loss(mask_logits.float(), batch.defect_mask, batch.judged)
        loss_g = w.reconstruction * loss_rec + w.mse * loss_mse + w.defect_mask * loss_mask
        if gan_rows:  # Generator: also fool the updated D and match its features.
            loss_g = loss_g + self.adversarial_terms(*gan_batch, losses)
        self.generator_step(loss_g)
        losses.update(
            loss_g=loss_g.item(),
            loss_rec=loss_rec.item(),
            loss_mse=loss_mse.item(),
            loss_mask=loss_mask.item(),
        )
        return losses


def defect_weight(
    mask: torch.Tensor, masked: float, judged: torch.Tensor | None = None
) -> torch.Tensor | float:
    """Per-pixel loss weight 1 + ``masked`` on defects and their 1 px rim (a soft crack edge is part of the
    repair), zero outside ``judged`` when given, normalised so the mean weight stays 1 and the learning rate
    means the same with or without."""
    if not masked and judged is None:
        return 1.0
    weight = 1 + masked * F.max_pool2d(mask, 3, stride=1, padding=1)
    if judged is not None:
        weight = weight * judged
    return weight / weight.mean().clamp_min(1e-6)


__all__ = ["Batch", "RestorationGAN", "defect_weight", "stage_of"]
