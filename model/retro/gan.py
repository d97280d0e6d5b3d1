"""Reference-guided retro GAN training, one step at a time, callable without Ray (Ray Train wraps the same
step; pipeline/training/driver.py runs both families).

Paired training from clean photos alone: draw renderer parameters p, render photo A with p as the reference
and photo B with p as the target (and a third photo C with p, a second reference with the same look). Then
  stage 1:  L_G = w_rec * Charbonnier(G(B, E(A)), B_p) + w_mse * MSE(...)
                  + w_params * MSE(E(A).params, p) + w_sens * CE(E(A).class, class(p))   (and the same for C)
                  + w_agree * MSE(E(A).code, E(C).code)
  stage 2:  + w_adv * adv(D(G(B, E(A)) | A)) + w_fm * FM, and D learns (A, B_p) real vs (A, G(...)) fake:
            a multi-scale PatchGAN judging (reference, output) pairs for style agreement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.discriminator import Discriminator
from model.gan import GANTraining
from model.retro.config import RetroConfig
from model.retro.encoder import Style
from model.retro.generator import RetroModel


@dataclass
class RetroBatch:
    """All (B, 3, S, S) in [-1, 1] on one device, except ``params`` (B, targets.SIZE) in [0, 1] and
    ``sensitivity`` (B,) class indices."""

    photo: torch.Tensor  # B, the modern photo
    reference: torch.Tensor  # A rendered with p
    second_reference: torch.Tensor  # C rendered with p
    target: torch.Tensor  # B rendered with p
    params: torch.Tensor
    sensitivity: torch.Tensor


class RetroGAN(GANTraining):
    def __init__(
        self,
        cfg: RetroConfig,
        device: str | torch.device = "cpu",
        wrap: Callable[[nn.Module], nn.Module] | None = None,
        autocast_dtype: torch.dtype | None = None,
    ):
        super().__init__(cfg, RetroModel(cfg), Discriminator(cfg.discriminator), device, wrap, autocast_dtype)

    def train_step(self, batch: RetroBatch, progress: float | None = None) -> dict[str, float]:
        stage, losses = self.begin_step(progress)
        w = self.cfg.train.losses
        self.generator.train()
        with self._autocast():
            styled, style, second = self.generator(batch.photo, batch.reference, batch.second_reference)
        styled = styled.float()
        if stage == 2:  # D: (reference, target) real against (reference, styled) fake
            self.discriminator_step(batch.target, styled, batch.reference, losses)

        loss_rec = self.reconstruction(styled, batch.target)
        loss_mse = F.mse_loss(styled, batch.target)
        assert second is not None
        loss_params = (_param_loss(style, batch) + _param_loss(second, batch)) / 2
        loss_sens = (_class_loss(style, batch) + _class_loss(second, batch)) / 2
        loss_agree = F.mse_loss(style.code.float(), second.code.float())
        loss_g = (
            w.reconstruction * loss_rec
            + w.mse * loss_mse
            + w.params * loss_params
            + w.sensitivity * loss_sens
            + w.code_agreement * loss_agree
        )
        if stage == 2:
            loss_g = loss_g + self.adversarial_terms(batch.target, styled, batch.reference, losses)
        self.generator_step(loss_g)
        losses.update(
            loss_g=loss_g.item(),
            loss_rec=loss_rec.item(),
            loss_mse=loss_mse.item(),
            loss_params=loss_params.item(),
            loss_sensitivity=loss_sens.item(),
            loss_agree=loss_agree.item(),
        )
        return losses


def _param_loss(style: Style, batch: RetroBatch) -> torch.Tensor:
    return F.mse_loss(style.params.float(), batch.params)


def _class_loss(style: Style, batch: RetroBatch) -> torch.Tensor:
    return F.cross_entropy(style.sensitivity_logits.float(), batch.sensitivity)
