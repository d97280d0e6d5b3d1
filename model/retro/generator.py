"""The style generator and the retro model (style encoder + generator) that a checkpoint holds.

The generator turns a modern photo into the look a ``Style`` describes, in three branches, each conditioned
on the style by FiLM (per-channel scale and shift, Perez et al., 2018):
- ``point``: the print's colour as a function of the photo's colour alone (sensitivity, characteristic
  curves, toning, dye fading, paper tint), evaluated by a small conditioned MLP on a ``lut`` ^ 3 grid of
  colours and applied to the photo as a 3D LUT (trilinear), as film-simulation LUTs are: its cost does not
  grow with the photo, and it is the same at every resolution.
- ``field``: a small CNN on a ``field_side`` px view of the whole photo with its coordinates, returning a
  gain and a colour offset that are resampled to the photo: cos^4 vignetting, hand-coloured washes, light
  that spreads. Computed once per image, so tiles share it.
- ``local``: 3x3 residual blocks at half resolution (pixel-unshuffle): lens softness and fine texture.
No spatial normalisation anywhere: tiled stylisation equals the whole-image result (``stylize``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.retro.config import RetroConfig, StyleGeneratorConfig
from model.retro.encoder import Style, StyleEncoder, condition_dim

TILE = 512


class FiLM(nn.Module):
    """x * (1 + scale(cond)) + shift(cond); starts as the identity."""

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.proj(cond).to(x.dtype)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + scale) + shift


class _FiLMBlock(nn.Module):
    def __init__(
        self, cond_dim: int, channels: int, kernel: int = 3, dilation: int = 1, residual: bool = True
    ):
        super().__init__()
        pad = dilation * (kernel // 2)
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=pad, dilation=dilation)
        self.film = FiLM(cond_dim, channels)
        self.conv2 = (
            nn.Conv2d(channels, channels, kernel, padding=pad, dilation=dilation) if residual else None
        )

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.film(self.conv1(x), cond), 0.2)
        return x + self.conv2(h) if self.conv2 is not None else h


class StyleGenerator(nn.Module):
    def __init__(self, cfg: StyleGeneratorConfig, cond_dim: int):
        super().__init__()
        self.cfg = cfg
        self.point_in = nn.Conv2d(3, cfg.point, 1)
        self.point = nn.ModuleList(
            _FiLMBlock(cond_dim, cfg.point, kernel=1, residual=False) for _ in range(cfg.point_layers)
        )
        self.point_out = nn.Conv2d(cfg.point, 3, 1)
        self.field_in = nn.Conv2d(3 + 3 + 2, cfg.field, 3, padding=1)
        self.field = nn.ModuleList(
            _FiLMBlock(cond_dim, cfg.field, dilation=d, residual=False) for d in (1, 2, 4)
        )
        self.field_out = nn.Conv2d(cfg.field, 4, 3, padding=1)
        self.local_in = nn.Conv2d(4 * 6, cfg.local, 3, padding=1)
        self.local = nn.ModuleList(_FiLMBlock(cond_dim, cfg.local) for _ in range(cfg.local_blocks))
        self.local_out = nn.Conv2d(cfg.local, 4 * 3, 3, padding=1)
        for layer in (self.point_out, self.field_out, self.local_out):  # the identity until learnt
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def lut(self, cond: torch.Tensor) -> torch.Tensor:
        """The style's 3D colour LUT, (B, 3, n, n, n) indexed [blue, green, red] (``grid_sample``'s order)."""
        n = self.cfg.lut
        axis = torch.linspace(0, 1, n, device=cond.device)
        b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
        colours = (
            torch.stack([r, g, b])[None].expand(len(cond), -1, -1, -1, -1).reshape(len(cond), 3, n, n * n)
        )
        h = F.leaky_relu(self.point_in(colours), 0.2)
        for block in self.point:
            h = block(h, cond)
        return self.point_out(h).reshape(len(cond), 3, n, n, n) + colours.reshape(len(cond), 3, n, n, n)

    def tone(self, photo: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
        """Per-pixel print colour of ``photo`` (B, 3, H, W) in [0, 1] through ``lut``."""
        grid = (photo.float().clamp(0, 1) * 2 - 1).permute(0, 2, 3, 1)[:, None]  # (B, 1, H, W, xyz = rgb)
        return F.grid_sample(lut.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)[
            :, :, 0
        ]

    def field_of(self, photo: torch.Tensor, cond: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
        """The whole image's (B, 4, field_side, field_side) field: log gain and colour offset. ``photo`` in
        [0, 1], the whole image (never a tile)."""
        side = self.cfg.field_side
        small = F.interpolate(
            photo.float(), (side, side), mode="bilinear", antialias=True, align_corners=False
        )
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, side), torch.linspace(-1, 1, side), indexing="ij")
        coords = torch.stack([ys, xs]).to(small)[None].expand(len(small), -1, -1, -1)
        h = F.leaky_relu(self.field_in(torch.cat([small, self.tone(small, lut), coords], dim=1)), 0.2)
        for block in self.field:
            h = block(h, cond)
        return self.field_out(h)

    @property
    def reach(self) -> int:
        """How far (px) the local branch sees around a pixel: half-resolution 3x3 convolutions in, two per
        block and out, each reaching 2 px of the full image, plus the pixel-unshuffle cell."""
        return 2 * (2 + 2 * self.cfg.local_blocks) + 1

    def forward(
        self,
        photo: torch.Tensor,
        cond: torch.Tensor,
        field: torch.Tensor | None = None,
        window: tuple[int, int, int, int] | None = None,
        lut: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``photo`` (B, 3, h, w) in [-1, 1] -> the print, same shape and range. For a tile, pass the whole
        image's ``field`` and ``lut`` and the tile's ``window`` (top, left, height, width of the whole
        image)."""
        u = (photo + 1) / 2
        lut = self.lut(cond) if lut is None else lut
        field = self.field_of(u, cond, lut) if field is None else field
        h, w = u.shape[-2:]
        window = window or (0, 0, h, w)
        gain_offset = _sample(field, window, h, w).to(u.dtype)
        y = self.tone(u, lut)
        y = y * torch.exp(gain_offset[:, :1]) + gain_offset[:, 1:]
        y = y + self._local(torch.cat([u, y], dim=1), cond)
        return y * 2 - 1

    def _local(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        z = F.leaky_relu(self.local_in(F.pixel_unshuffle(x, 2)), 0.2)
        for block in self.local:
            z = block(z, cond)
        return F.pixel_shuffle(self.local_out(z), 2)[..., :h, :w]


def _sample(field: torch.Tensor, window: tuple[int, int, int, int], h: int, w: int) -> torch.Tensor:
    """The whole image's field resampled at the pixels of ``window`` (bilinear, the same values as resizing
    the field to the whole image and cropping it, without ever holding the whole-image field). In float32:
    bf16 coordinates would be off by pixels on a large scan."""
    top, left, full_h, full_w = window
    ys = (torch.arange(top, top + h, device=field.device, dtype=torch.float32) + 0.5) * 2 / full_h - 1
    xs = (torch.arange(left, left + w, device=field.device, dtype=torch.float32) + 0.5) * 2 / full_w - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx, gy], dim=-1)[None].expand(len(field), -1, -1, -1)
    return F.grid_sample(field.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


class RetroModel(nn.Module):
    """Style encoder + style generator: ``model(photo, reference)`` is the photo in the reference's look."""

    def __init__(self, cfg: RetroConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = StyleEncoder(cfg.encoder)
        self.generator = StyleGenerator(cfg.generator, condition_dim(cfg.encoder))

    def forward(
        self, photo: torch.Tensor, reference: torch.Tensor, second_reference: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Style, Style | None]:
        """Training pass (one call, so DDP sees every parameter): the styled photo, the reference's style and,
        if given, the style of a second reference with the same look (for the code agreement loss)."""
        style = self.encoder(reference)
        second = self.encoder(second_reference) if second_reference is not None else None
        return self.generator(photo, style.condition()), style, second

    @torch.no_grad()
    def transfer(self, photo: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) photo and (1, 3, h, w) reference in [-1, 1] -> the photo in the reference's look."""
        return stylize(self, photo, self.encoder(reference))


@torch.no_grad()
def stylize(model: RetroModel, photo: torch.Tensor, style: Style, tile: int = TILE) -> torch.Tensor:
    """One photo (1, 3, H, W) in [-1, 1] in the look of ``style`` (one reference), tile by tile with a margin
    wider than the local branch sees: the result equals the whole-image pass at any size."""
    if tile < 2 or tile % 2:
        raise ValueError(f"tile must be an even number of pixels, got {tile}")
    generator = model.generator
    cond = style.condition()
    _, _, height, width = photo.shape
    lut = generator.lut(cond)
    field = generator.field_of((photo + 1) / 2, cond, lut)
    margin = generator.reach + generator.reach % 2  # even: the half-resolution grid matches the whole image's
    out = torch.empty_like(photo)
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            t0, l0 = max(0, top - margin), max(0, left - margin)
            t1, l1 = min(height, top + tile + margin), min(width, left + tile + margin)
            piece = generator(photo[..., t0:t1, l0:l1], cond, field, (t0, l0, height, width), lut)
            bottom, right = min(top + tile, height), min(left + tile, width)
            out[..., top:bottom, left:right] = piece[..., top - t0 : bottom - t0, left - l0 : right - l0]
    return out
