"""Multi-scale conditional PatchGAN discriminator (pix2pixHD-style) with spectral norm.

No BatchNorm anywhere: under DDP, BatchNorm buffers plus two D forwards (real, fake) before one backward
is a known failure ("modified by an inplace operation"), and spectral norm already bounds D's Lipschitz
constant (Miyato et al., 2018). Each scale returns its intermediate features for the feature-matching loss
(Wang et al., 2018, pix2pixHD eq. 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from model.config import DiscriminatorConfig


class PatchDiscriminator(nn.Module):
    """One PatchGAN: stride-2 4x4 convs, then a 1-channel map of real/fake logits per patch."""

    def __init__(self, in_channels: int, base_channels: int, num_layers: int):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, c_out = in_channels, base_channels
        for _ in range(num_layers):
            layers.append(nn.Sequential(spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)))
            c_in, c_out = c_out, min(c_out * 2, base_channels * 8)
        layers.append(nn.Sequential(spectral_norm(nn.Conv2d(c_in, c_out, 3, 1, 1)), nn.LeakyReLU(0.2)))
        self.layers = nn.ModuleList(layers)
        self.to_logits = spectral_norm(nn.Conv2d(c_out, 1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.to_logits(x), features  # logits (B, 1, H/2^n, W/2^n)


class Discriminator(nn.Module):
    """Input: candidate (restored or clean) and, if conditional, the degraded image; both (B, 3, H, W) in
    [-1, 1]. Output: one (logits, features) pair per scale, finest first."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        in_channels = 6 if cfg.conditional else 3
        self.scales = nn.ModuleList(
            PatchDiscriminator(in_channels, cfg.base_channels, cfg.num_layers) for _ in range(cfg.num_scales)
        )

    def forward(
        self, candidate: torch.Tensor, degraded: torch.Tensor | None = None
    ) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        if self.cfg.conditional:
            if degraded is None:
                raise ValueError("conditional discriminator needs the degraded image")
            x = torch.cat([degraded, candidate], dim=1)  # (B, 6, H, W)
        else:
            x = candidate
        outputs = []
        for i, disc in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)  # (B, C, H/2, W/2)
            outputs.append(disc(x))
        return outputs
