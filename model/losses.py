"""GAN losses, one small module each. Weights live in config.LossConfig, not here."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DiscOutputs = list[tuple[torch.Tensor, list[torch.Tensor]]]  # per scale: (logits, features)

GAN_MODES = ("hinge", "lsgan")


class AdversarialLoss(nn.Module):
    """Hinge (Lim & Ye, 2017) or least-squares (Mao et al., 2017) GAN loss, averaged over scales.

    ``for_discriminator=True`` scores D on real or fake logits; ``False`` is G's loss on fake logits.
    """

    def __init__(self, mode: str = "hinge"):
        super().__init__()
        if mode not in GAN_MODES:
            raise ValueError(f"unknown GAN mode {mode!r}; choose one of {GAN_MODES}")
        self.mode = mode

    def forward(self, outputs: DiscOutputs, real: bool, for_discriminator: bool) -> torch.Tensor:
        losses = [self._one(logits, real, for_discriminator) for logits, _ in outputs]
        return torch.stack(losses).mean()

    def _one(self, logits: torch.Tensor, real: bool, for_discriminator: bool) -> torch.Tensor:
        if self.mode == "lsgan":
            target = 1.0 if real else 0.0
            return F.mse_loss(logits, torch.full_like(logits, target))
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if real else F.relu(1.0 + logits).mean()


class FeatureMatchingLoss(nn.Module):
    """L1 between D's intermediate features on real and fake (pix2pixHD eq. 4); real features are targets."""

    def forward(self, fake: DiscOutputs, real: DiscOutputs) -> torch.Tensor:
        terms = [
            F.l1_loss(f_fake, f_real.detach())
            for (_, feats_fake), (_, feats_real) in zip(fake, real, strict=True)
            for f_fake, f_real in zip(feats_fake, feats_real, strict=True)
        ]
        return torch.stack(terms).mean()


class DefectMaskLoss(nn.Module):
    """Binary cross-entropy on mask logits; defect pixels are rare, so they get ``pos_weight``. ``judged``
    (optional, same shape, {0, 1}) limits the loss to the pixels whose label is known, averaged over them."""

    def __init__(self, pos_weight: float = 1.0):
        super().__init__()
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)), persistent=False)

    def forward(
        self, mask_logits: torch.Tensor, mask: torch.Tensor, judged: torch.Tensor | None = None
    ) -> torch.Tensor:
        if judged is None:
            return F.binary_cross_entropy_with_logits(mask_logits, mask, pos_weight=self.pos_weight)
        loss = F.binary_cross_entropy_with_logits(
            mask_logits, mask, pos_weight=self.pos_weight, reduction="none"
        )
        return (loss * judged).sum() / judged.sum().clamp_min(1.0)


class ReconstructionLoss(nn.Module):
    """Charbonnier, sqrt((restored - clean)^2 + eps^2): L1 away from zero (keeps colours true, discourages
    invention), smooth at zero so the gradient does not flip sign on every pixel of an almost-right image."""

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(
        self, restored: torch.Tensor, clean: torch.Tensor, weight: torch.Tensor | float = 1.0
    ) -> torch.Tensor:
        """Mean over pixels, each weighted by ``weight`` (a tensor broadcast over channels, or 1)."""
        return (weight * torch.sqrt((restored - clean) ** 2 + self.eps**2)).mean()
