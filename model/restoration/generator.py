"""Compact restoration U-Net that works at half resolution, with a global residual and a defect-mask head.

Code names -> paper symbols:
  c = tone_context(degraded)                       (B, 52): tone statistics of the WHOLE image
  M, o, b = T(c)                                   tone head: 3x3 colour matrix, offset, bottleneck bias
  toned = M @ degraded + o                         per image, the same for every pixel (fading, casts, toning)
  x = pixel_unshuffle(toned, 2)                    (B, 12, H/2, W/2): the net works on a quarter of the pixels
  restored = toned + pixel_shuffle(G_res(x; b))    global residual (identity is the zero residual)
  mask_logits = pixel_shuffle(G_mask(x; b))        per-pixel logit that a pixel was a repaired defect

Why this shape (measured on the 2-core AVX-512 box, see docs/PERFORMANCE.md): plain dense 3x3 convolutions
are what oneDNN runs fastest, and unshuffling to half resolution loses nothing (the 12 input channels hold
every pixel) while cutting the cost per megapixel by 4. Pixel-shuffle out avoids transposed-conv
checkerboards. There is no normalisation at all, over space or channels: the output for a pixel depends only
on its receptive field, so a scan restored in tiles equals the scan restored in one pass, and batch size or
DDP never change the result. Without norms, each residual branch is scaled down at init (EDSR practice) and
the output convolution is zero: an untrained generator returns its input exactly.

The tone head exists because fading, yellowing, sepia toning and dye loss act on the whole print, and most
of the error they cause is a per-image colour transform: on the validation photos an oracle per-image affine
colour fit recovers +4 to +5 dB on the engine's light, medium and heavy sets, far more than a receptive field
of a few hundred pixels can see. So a small MLP reads quantiles of the whole image (``tone_context``, on a
thumbnail of at most 256 px) and returns one affine colour transform per image, plus a bias that tells the
U-Net's bottleneck what kind of print it is looking at. Tiles stay exact: the context is computed once from
the whole image and handed to every tile (``inference.tile_restorer``). Its last layers start at zero, so the
transform starts as the identity; the head runs in float32 even under bf16 autocast, because a bf16 colour
matrix would be off by up to half a percent on a photo that needs no change at all.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from model.context import CONTEXT_FEATURES, tone_context
from model.restoration.config import GeneratorConfig


class ResBlock(nn.Module):
    """x + conv(act(conv(x))): two dense 3x3 convolutions, no normalisation."""

    def __init__(self, channels: int, init_scale: float = 0.1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        with torch.no_grad():  # small residual branches keep a deep norm-free net stable at the start
            self.conv2.weight.mul_(init_scale)
            self.conv2.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2, inplace=True))


class ToneHead(nn.Module):
    """context -> (colour matrix (B, 3, 3), offset (B, 3), bottleneck bias (B, C)); identity at init."""

    def __init__(self, hidden: int, bottleneck: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(CONTEXT_FEATURES, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
        )
        self.to_affine = nn.Linear(hidden, 12)
        self.to_bias = nn.Linear(hidden, bottleneck)
        for layer in (self.to_affine, self.to_bias):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.mlp(context)
        affine = self.to_affine(h)
        matrix = torch.eye(3, device=h.device) + affine[:, :9].view(-1, 3, 3)
        return matrix, affine[:, 9:], self.to_bias(h)


def _stage(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(channels) for _ in range(count)))


class Generator(nn.Module):
    """Image-to-image U-Net.

    Input: degraded RGB, (B, 3, H, W) float in [-1, 1], any H and W (padded internally to a multiple of
    ``multiple`` and cropped back), and optionally ``context``: ``tone_context`` of the whole image when
    ``degraded`` is a tile of it (default: read from ``degraded`` itself).
    Output: (restored (B, 3, H, W), mask_logits (B, 1, H, W)). ``restored``
    is not clamped, so reconstruction gradients reach pixels near the range ends; callers clamp to [-1, 1].
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        widths, blocks = cfg.widths, cfg.blocks
        self.stem = nn.Conv2d(12, widths[0], 3, padding=1)
        self.encoder = nn.ModuleList(_stage(w, n) for w, n in zip(widths[:-1], blocks, strict=True))
        # 2x2 stride-2 convolutions: a learned downsample at a quarter of a 3x3's cost.
        self.down = nn.ModuleList(nn.Conv2d(a, b, 2, stride=2) for a, b in pairwise(widths))
        self.bottleneck = _stage(widths[-1], cfg.bottleneck_blocks)
        # 1x1 conv to 4x channels + pixel-shuffle: a cheap learned upsample without checkerboards.
        self.up = nn.ModuleList(
            nn.Sequential(nn.Conv2d(b, 4 * a, 1), nn.PixelShuffle(2)) for a, b in pairwise(widths)
        )
        self.decoder = nn.ModuleList(_stage(w, n) for w, n in zip(widths[:-1], blocks, strict=True))
        self.to_residual = nn.Conv2d(widths[0], 12, 3, padding=1)
        self.to_mask = nn.Conv2d(widths[0], 4, 3, padding=1)
        nn.init.zeros_(self.to_residual.weight)
        nn.init.zeros_(self.to_residual.bias)
        # 0 = no tone head: checkpoints made before it existed load and restore exactly as they did.
        self.tone = ToneHead(cfg.tone_head, widths[-1]) if cfg.tone_head else None

    @property
    def multiple(self) -> int:
        """H and W are padded to this: 2 for the unshuffle, times 2 per downsampling level."""
        return 2 ** len(self.cfg.widths)

    def forward(
        self, degraded: torch.Tensor, context: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        height, width = degraded.shape[-2:]
        bias = None
        if self.tone is not None:
            with torch.autocast(degraded.device.type, enabled=False):
                context = tone_context(degraded) if context is None else context.float()
                matrix, offset, bias = self.tone(context)
                layout = (
                    torch.channels_last
                    if degraded.is_contiguous(memory_format=torch.channels_last)
                    else torch.contiguous_format
                )  # einsum returns NCHW; oneDNN's convolutions are 25% slower if channels_last is lost here
                toned = torch.einsum("bij,bjhw->bihw", matrix, degraded.float()) + offset[..., None, None]
                degraded = toned.contiguous(memory_format=layout)
        x = _pad_to_multiple(degraded, self.multiple)  # (B, 3, H', W')
        h = self.stem(F.pixel_unshuffle(x, 2))  # (B, w0, H'/2, W'/2)
        skips = []
        for stage, down in zip(self.encoder, self.down, strict=True):
            h = stage(h)
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h if bias is None else h + bias[..., None, None].to(h.dtype))
        for level in reversed(range(len(self.decoder))):
            h = self.decoder[level](self.up[level](h) + skips[level])  # additive skips: no concat copies
        h = F.leaky_relu(h, 0.2)
        restored = x + F.pixel_shuffle(self.to_residual(h), 2)
        mask_logits = F.pixel_shuffle(self.to_mask(h), 2)
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
