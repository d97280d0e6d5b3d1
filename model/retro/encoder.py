"""The style encoder: a real (or rendered) old print -> the renderer's parameters, a sensitivity class and a
latent style code.

It reads the reference at two scales that do not depend on its pixel count: a ``side`` x ``side`` thumbnail
for a small CNN (layout: vignetting, washes, texture that survives the thumbnail) and the whole-image colour
statistics of ``tone_context`` (black and white points, casts, toning, fading). So a 12 MP scan and its
thumbnail give the same estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model.context import CONTEXT_FEATURES, tone_context
from model.retro import targets
from model.retro.config import EncoderConfig
from model.retro.params import SENSITIVITIES, RetroParams


@dataclass
class Style:
    """What the encoder read from a batch of references: ``params`` (B, targets.SIZE) in [0, 1],
    ``sensitivity_logits`` (B, 4), ``code`` (B, code_dim)."""

    params: torch.Tensor
    sensitivity_logits: torch.Tensor
    code: torch.Tensor

    def condition(self) -> torch.Tensor:
        """The generator's conditioning vector: code, parameters and class probabilities, float32."""
        return torch.cat(
            [self.code.float(), self.params.float(), self.sensitivity_logits.float().softmax(1)], dim=1
        )

    def to_params(self, index: int = 0) -> RetroParams:
        """The estimated renderer parameters of reference ``index``, as a readable ``RetroParams``."""
        return targets.from_vector(self.params[index], int(self.sensitivity_logits[index].argmax()))


def condition_dim(cfg: EncoderConfig) -> int:
    return cfg.code_dim + targets.SIZE + len(SENSITIVITIES)


class StyleEncoder(nn.Module):
    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c_in = 3
        for width in cfg.widths:
            layers += [nn.Conv2d(c_in, width, 3, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True)]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.mlp = nn.Sequential(
            nn.Linear(2 * c_in + CONTEXT_FEATURES, cfg.hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(cfg.hidden, cfg.hidden),
            nn.LeakyReLU(0.2, inplace=True),
        )
        self.to_params = nn.Linear(cfg.hidden, targets.SIZE)
        self.to_sensitivity = nn.Linear(cfg.hidden, len(SENSITIVITIES))
        self.to_code = nn.Linear(cfg.hidden, cfg.code_dim)

    def forward(self, reference: torch.Tensor) -> Style:
        """``reference`` (B, 3, H, W) in [-1, 1], any size."""
        side = self.cfg.side
        thumb = F.interpolate(
            reference.float(), (side, side), mode="bilinear", antialias=True, align_corners=False
        )
        h = self.features(thumb.contiguous(memory_format=torch.channels_last))
        pooled = torch.cat([h.mean((2, 3)), h.float().std((2, 3))], dim=1)
        h = self.mlp(torch.cat([pooled.float(), tone_context(reference)], dim=1))
        return Style(torch.sigmoid(self.to_params(h)), self.to_sensitivity(h), self.to_code(h))
