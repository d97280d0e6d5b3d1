"""Whole-image tone statistics: what a network that works on tiles or small views learns about the whole
print (its black and white points, casts, toning, fading). Shared by the restoration generator's tone head
and the retro style encoder."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TONE_QUANTILES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995)
_SPREAD_QUANTILES = (0.1, 0.5, 0.9, 0.99)
CONTEXT_FEATURES = 3 * len(TONE_QUANTILES) + 9 + len(_SPREAD_QUANTILES)
CONTEXT_SIDE = 256  # the statistics are read from a thumbnail of at most this side: the same at any scan size
CONTEXT_POOL = 4


def tone_context(degraded: torch.Tensor, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, CONTEXT_FEATURES) float32: per-channel quantiles, means, spreads and
    distance from grey, and quantiles of each pixel's channel spread (a saturation proxy), of the whole image.
    They see a black point lifted by fading, a white point gone yellow, a cast that tints even the shadows.
    ``scale`` and ``shift`` map other ranges to [-1, 1] after pooling, so a full-size scan is never copied."""
    x = degraded.float() if degraded.dtype != torch.float32 else degraded
    height, width = x.shape[-2:]
    # Averaged over blocks of at least 4x4 px: grain, noise and specks would otherwise set the extreme
    # quantiles of a training crop, where a whole scan's thumbnail has averaged them away.
    k = max(CONTEXT_POOL, max(height, width) / CONTEXT_SIDE)
    x = F.adaptive_avg_pool2d(x, (max(1, math.ceil(height / k)), max(1, math.ceil(width / k))))
    x = x * scale + shift  # pooling is linear: the same as mapping first, on a thumbnail
    flat = x.flatten(2)  # (B, 3, N)
    q = torch.tensor(TONE_QUANTILES, device=x.device)
    quantiles = torch.quantile(flat, q, dim=2).permute(1, 2, 0).flatten(1)  # (B, 3 * Q)
    grey = flat.mean(1, keepdim=True)
    spread = flat.amax(1) - flat.amin(1)  # (B, N)
    spread_q = torch.quantile(spread, torch.tensor(_SPREAD_QUANTILES, device=x.device), dim=1).T
    stats = [flat.mean(2), flat.std(2, correction=0), (flat - grey).abs().mean(2)]
    return torch.cat([quantiles, *stats, spread_q], dim=1)
