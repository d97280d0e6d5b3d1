"""U-Net restoration generator with a global residual, a defect-mask head and FiLM task conditioning.

Code names -> paper symbols:
  restored = degraded + G_res(degraded, task)      global residual (identity is the zero residual)
  mask_logits = G_mask(degraded, task)             per-pixel logit that a pixel was a repaired defect
  FiLM: h <- ChannelNorm(h) * (1 + gamma(e_task)) + beta(e_task)   (Perez et al., 2018)

Normalisation is per pixel over channels (ChannelNorm), never over space: the output for a pixel then
depends only on its neighbourhood, not on the statistics of the whole input, so a large scan restored in
tiles matches the scan restored in one pass, and batch size or DDP never change the result.

Self-contained on purpose: blocks are defined here and not shared with the discriminator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.config import GeneratorConfig


class ChannelNorm(nn.Module):
    """Normalise each pixel's feature vector to zero mean, unit variance over channels (no affine: FiLM
    supplies scale and shift). Input and output (B, C, H, W).

    Runs as layer_norm over a channels-last view: one fused kernel, 2x faster than mean/var over dim 1 on
    CPU, and free of copies on GPU where activations are channels_last already."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],)).permute(0, 3, 1, 2)


class FiLMResBlock(nn.Module):
    """Pre-activation residual block whose norms are modulated by the task embedding."""

    def __init__(self, in_channels: int, out_channels: int, embed_dim: int):
        super().__init__()
        self.norm1 = ChannelNorm()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm2 = ChannelNorm()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        # One linear gives (gamma1, beta1, gamma2, beta2); zero-init so every task starts unmodulated.
        self.film = nn.Linear(embed_dim, 2 * in_channels + 2 * out_channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        # Zero-init the last conv: each block starts as the identity, so the whole net starts near it.
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.splits = (in_channels, in_channels, out_channels, out_channels)

    def forward(self, x: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        gamma1, beta1, gamma2, beta2 = (
            t[:, :, None, None] for t in self.film(embed).split(self.splits, dim=1)
        )  # each (B, C, 1, 1)
        h = self.norm1(x) * (1 + gamma1) + beta1
        h = self.conv1(F.silu(h))
        h = self.norm2(h) * (1 + gamma2) + beta2
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class Generator(nn.Module):
    """Image-to-image U-Net.

    Input: degraded RGB, (B, 3, H, W) float in [-1, 1], any H and W (padded internally to a multiple of
    2**(num_levels - 1) and cropped back). Output: (restored (B, 3, H, W), mask_logits (B, 1, H, W)).
    ``restored`` is not clamped, so L1 gradients reach pixels near the range ends; callers clamp to [-1, 1].
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        channels = [cfg.base_channels * m for m in cfg.channel_mults]
        embed_dim = cfg.task_embed_dim
        self.task_embed = nn.Sequential(
            nn.Embedding(cfg.num_tasks, embed_dim), nn.Linear(embed_dim, embed_dim), nn.SiLU()
        )

        def block(c_in: int, c_out: int) -> FiLMResBlock:
            return FiLMResBlock(c_in, c_out, embed_dim)

        self.stem = nn.Conv2d(3, channels[0], 3, padding=1)
        self.encoder = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for level, c in enumerate(channels):
            c_in = channels[max(level - 1, 0)]
            blocks = [block(c_in if i == 0 else c, c) for i in range(cfg.num_res_blocks)]
            self.encoder.append(nn.ModuleList(blocks))
            if level < len(channels) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.bottleneck = nn.ModuleList(
            block(channels[-1], channels[-1]) for _ in range(cfg.num_bottleneck_blocks)
        )
        self.upsample = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(len(channels) - 1)):
            c, c_below = channels[level], channels[level + 1]
            self.upsample.append(nn.Conv2d(c_below, c, 3, padding=1))  # after nearest 2x: no checkerboard
            blocks = [block(2 * c if i == 0 else c, c) for i in range(cfg.num_res_blocks)]
            self.decoder.append(nn.ModuleList(blocks))
        self.out_norm = ChannelNorm()
        self.to_residual = nn.Conv2d(channels[0], 3, 3, padding=1)
        self.to_mask = nn.Conv2d(channels[0], 1, 3, padding=1)
        # Global residual starts at exactly zero: an untrained generator returns its input.
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)

    @property
    def multiple(self) -> int:
        return 2 ** (self.cfg.num_levels - 1)

    def forward(
        self, degraded: torch.Tensor, task: torch.Tensor | int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch, _, height, width = degraded.shape
        if isinstance(task, int):
            task = torch.full((batch,), task, dtype=torch.long, device=degraded.device)
        embed = self.task_embed(task)  # (B, E)
        x = _pad_to_multiple(degraded, self.multiple)  # (B, 3, H', W')

        h = self.stem(x)
        skips = []
        for level, blocks in enumerate(self.encoder):
            for blk in blocks:
                h = blk(h, embed)
            if level < len(self.downsample):
                skips.append(h)
                h = self.downsample[level](h)  # (B, C, H/2, W/2)
        for blk in self.bottleneck:
            h = blk(h, embed)
        for up, blocks in zip(self.upsample, self.decoder, strict=True):
            h = up(F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = torch.cat([h, skips.pop()], dim=1)  # (B, 2C, H, W)
            for blk in blocks:
                h = blk(h, embed)
        h = F.silu(self.out_norm(h))
        restored = x + self.to_residual(h)
        mask_logits = self.to_mask(h)
        return restored[..., :height, :width], mask_logits[..., :height, :width]


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad bottom/right so H and W divide ``multiple``. Reflect keeps borders natural; tiny images
    (where reflect is undefined) replicate."""
    height, width = x.shape[-2:]
    pad_h, pad_w = -height % multiple, -width % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
