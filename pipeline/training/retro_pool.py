"""Training samples for the retro family: looks drawn by ``sample_params`` and rendered on three photos.

A sample is (B, A_p, C_p, B_p, p, class): photo B, photos A and C rendered with parameters p (two references
with one look), B rendered with p (the target), p as the encoder's [0, 1] targets and its sensitivity class.
Each photo is a random square of a clean photo scaled to ``side`` px: the renderer treats it as a whole
print, so vignetting, washes and physical sizes are those of a whole picture.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from model.retro import targets
from model.retro.gan import RetroBatch
from model.retro.render import render
from model.retro.sampling import sample_params
from pipeline.training.data import RenderedPool, shrunk


class RetroPool(RenderedPool):
    def __init__(
        self,
        photos: list[np.ndarray],
        side: int,
        seed: int,
        rank: int,
        size: int,
        refresh: int,
        device: torch.device | None = None,
    ):
        super().__init__(seed, rank, size, refresh, device)
        self.side = side
        # Squares are cut from thumbnails of at least twice the side: the same content, a tenth of the work.
        self.photos = [shrunk(photo, 2 * side) for photo in photos]

    def batch(self, step: int, batch_size: int) -> RetroBatch:
        _, index = self._draw(step, batch_size)
        photo, reference, second, target, params, sensitivity = (part[index] for part in self.slots)
        images = (
            x.to(self.device).float().div(255).mul(2).sub(1) for x in (photo, reference, second, target)
        )
        return RetroBatch(*images, params.to(self.device), sensitivity.to(self.device))

    def _sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        params = sample_params(rng)
        picks = rng.choice(len(self.photos), size=3, replace=len(self.photos) < 3)
        photo, reference, second = (self._square(int(i), rng) for i in picks)
        seeds = rng.integers(1 << 31, size=3)
        looks = zip((reference, second, photo), seeds, strict=True)
        rendered = [_uint8(render(_float(x), params, int(s))) for x, s in looks]
        return (
            photo,
            *rendered,
            targets.to_vector(params),
            torch.tensor(targets.sensitivity_index(params)),
        )

    def _square(self, i: int, rng: np.random.Generator) -> torch.Tensor:
        image = self.photos[i]
        h, w = image.shape[:2]
        size = max(8, int(min(h, w) * rng.uniform(0.6, 1.0)))
        top, left = rng.integers(h - size + 1), rng.integers(w - size + 1)
        square = Image.fromarray(image[top : top + size, left : left + size])
        square = square.resize((self.side, self.side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        return torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255


def _uint8(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
