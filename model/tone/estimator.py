"""Read a print's ageing from its whole image: a thumbnail's tone statistics -> a ``ToneCorrection``.

The estimator sees what a person judging fading looks at: each channel's levels (quantiles from the deepest
shadow to the brightest highlight) and the colour of the shadows, mid-tones and highlights in turn (mean
chroma in eight luminance bands, by rank). A dye fade tints the shadows, a yellowed base the highlights, a
fade lifts the black point toward the paper's colour, so these 63 numbers are where the physics shows. A small
MLP maps them to the physical parameters and a gate: how sure it is that the print needs correcting at all
(a clean sunset and a yellowed print can share their highlights; the gate is what keeps the sunset).

Every output starts near "leave it" (sigmoids shifted toward zero), so an untrained or unsure estimator
returns the print unchanged.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from model.restoration.baseline import is_toned_monochrome
from model.tone.physics import MAX_DYE, MAX_FADE, MAX_YELLOW, ToneCorrection, luma

# What clean photos show by themselves: a low-contrast scene reads as a fade of up to ~0.15 and a warm or
# single-coloured one as a cast of a few percent (measured on 245 held-out clean photos, docs/MODEL.md).
# ``estimate`` undoes only what lies beyond them, so an undamaged photo is left alone.
FADE_MARGIN = 0.15
COLOUR_MARGIN = 0.05
THUMBNAIL = 64  # px per side: global tone survives block averaging, and a thumbnail costs nothing to read
QUANTILES = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995)
BANDS = 8
FEATURES = 3 * len(QUANTILES) + 3 * BANDS


def thumbnail(image: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) or (3, H, W) in [0, 1] -> (B, 3, THUMBNAIL, THUMBNAIL) by area averaging."""
    batch = image[None] if image.dim() == 3 else image
    return F.interpolate(batch.float(), size=(THUMBNAIL, THUMBNAIL), mode="area")


def features(thumbs: torch.Tensor) -> torch.Tensor:
    """(B, 3, h, w) thumbnails in [0, 1] -> (B, FEATURES): per-channel quantiles, then each luminance band's
    mean colour minus its luminance (R, G, B), bands from darkest to brightest."""
    pixels = thumbs.flatten(2)  # (B, 3, N)
    levels = torch.quantile(pixels, torch.tensor(QUANTILES, device=thumbs.device), dim=2)  # (Q, B, 3)
    brightness = luma(thumbs).flatten(1)  # (B, N)
    order = brightness.argsort(dim=1)
    ranked = pixels.gather(2, order[:, None].expand(-1, 3, -1))
    bands = torch.stack([band.mean(2) for band in ranked.chunk(BANDS, dim=2)], 2)  # (B, 3, BANDS)
    band_luma = torch.stack([band.mean(1) for band in brightness.gather(1, order).chunk(BANDS, dim=1)], 1)
    chroma = bands - band_luma[:, None]
    return torch.cat([levels.permute(1, 2, 0).flatten(1), chroma.flatten(1)], 1)


class ToneEstimator(nn.Module):
    """features (B, FEATURES) [and the thumbnails, with ``conv`` > 0] -> physical parameters and a gate, each
    in its valid range. ``conv`` adds a small CNN over the thumbnail (what is in the picture: sky, skin,
    paper margins), pooled to ``conv`` numbers beside the statistics."""

    def __init__(self, hidden: int = 256, conv: int = 0):
        super().__init__()
        self.hidden, self.conv = hidden, conv
        self.trunk = None
        if conv:
            widths = (3, conv // 4, conv // 2, conv, conv)
            layers: list[nn.Module] = []
            for a, b in itertools.pairwise(widths):
                layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.SiLU()]
            self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.net = nn.Sequential(
            nn.Linear(FEATURES + conv, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 11),
        )
        # Zero last layer: every output starts at its offset, a near-identity correction at half strength.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)
        # Standardisation of the inputs, fitted on the training features and saved with the weights.
        self.register_buffer("mean", torch.zeros(FEATURES))
        self.register_buffer("std", torch.ones(FEATURES))

    def forward(self, feats: torch.Tensor, thumbs: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x = (feats - self.mean) / self.std
        if self.trunk is not None:
            x = torch.cat([x, self.trunk(thumbs * 2 - 1)], 1)
        z = self.net(x)
        return {
            "fade": MAX_FADE * torch.sigmoid(z[:, 0] - 3),
            "paper": torch.sigmoid(z[:, 1:4] + 2),
            "yellow": -MAX_YELLOW * torch.sigmoid(z[:, 4:7] - 3),
            "dye": MAX_DYE * torch.sigmoid(z[:, 7:10] - 3),
            "gate": torch.sigmoid(z[:, 10]),
        }


def applied(
    params: dict[str, torch.Tensor], strength: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """The parameters ``physics.invert`` takes, each moved toward identity by gate x ``strength``."""
    s = params["gate"] if strength is None else params["gate"] * strength
    return params["fade"] * s, params["paper"], params["yellow"] * s[:, None], params["dye"] * s[:, None]


def monochrome(image: torch.Tensor) -> bool:
    """Whether a (3, H, W) image in [0, 1] is a black-and-white print, toned or not (chroma a function of
    luminance: the classical baseline's test, on a 256 px copy)."""
    small = F.interpolate(image[None].float(), scale_factor=min(1.0, 256 / max(image.shape[1:])), mode="area")
    pixels = (small[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
    return is_toned_monochrome(pixels)


def beyond(value: torch.Tensor, margin: float) -> torch.Tensor:
    """``value`` where its magnitude passes ``margin``, else 0. A hard cut, not a shrink: a print clearly
    faded gets its whole correction (a shrink by the margin cost 0.9 dB more on ``medium``)."""
    return torch.where(value.abs() > margin, value, torch.zeros_like(value))


@torch.inference_mode()
def estimate(
    estimator: ToneEstimator, image: torch.Tensor, cap: float = 1.0, margins: bool = True
) -> ToneCorrection:
    """The correction for one whole image (3, H, W) in [0, 1], its strength at most ``cap``. ``margins``
    False undoes also what clean photos show by themselves (only to measure what the margins cost)."""
    fade_margin, colour_margin = (FADE_MARGIN, COLOUR_MARGIN) if margins else (0.0, 0.0)
    thumbs = thumbnail(image.to(estimator.mean.device))
    params = estimator(features(thumbs), thumbs)
    gate = float(params["gate"][0])
    if monochrome(image):
        # A black-and-white print has no dyes to fade, and its tone (sepia, selenium, a yellowed base that
        # reads as one) is kept: only its fade is undone. Without this the estimator used an even "dye fade"
        # as a gamma and darkened fine B&W prints (seen on an Ansel Adams print, docs/MODEL.md).
        params = {
            **params,
            "dye": torch.zeros_like(params["dye"]),
            "yellow": torch.zeros_like(params["yellow"]),
        }
    return ToneCorrection(
        fade=float(beyond(params["fade"][0], fade_margin)),
        paper=tuple(float(v) for v in params["paper"][0]),
        yellow=tuple(float(v) for v in beyond(params["yellow"][0], colour_margin)),
        dye=tuple(float(v) for v in beyond(params["dye"][0], colour_margin)),
        strength=gate,
        gate=gate,
    ).capped(cap)
