"""The Ray Data actor that renders decoded images as period prints with an era preset (model/retro/).

A run with ``--model era:NAME`` (``patina stylize --era NAME``) goes through the same job as restoration:
manifest, fetch, decode, this actor in place of the ``Restorer``, encode and write, results manifest. Callable
without Ray too: ``Stylizer("1900s-sepia")(batch)``.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import torch

from model.retro.eras import era
from model.retro.render import render
from pipeline.batch.restorer import ImageActor, colour_tensor, like_pixels, pick_device
from pipeline.batch.stages import image_at

ERA_SCHEME = "era:"  # --model era:NAME selects an era preset instead of a checkpoint


def era_name(model: str) -> str | None:
    """The era of an ``era:NAME`` model, None for a checkpoint."""
    return model[len(ERA_SCHEME) :] if model.startswith(ERA_SCHEME) else None


def era_model_id(name: str) -> str:
    """What the results manifest records as the model of an era run: family, era and a digest of the
    parameters, so a changed preset is never mistaken for the one that made earlier outputs."""
    digest = hashlib.sha256(era(name).to_json().encode()).hexdigest()[:12]
    return f"retro:{name}:{digest}"


class Stylizer(ImageActor):
    """Renders each row as a print of ``era_name``. Each image's grain and wear are seeded by its row id, so a
    re-run or a retried batch writes the same bytes. Prints are colour (toned) even from grayscale scans;
    alpha is carried over."""

    def __init__(self, era_name: str, device: str = "auto", cpu_threads: int | None = None):
        self.params = era(era_name)
        self.model_id = era_model_id(era_name)
        self.device = pick_device(device)
        if self.device.type == "cpu" and cpu_threads:
            torch.set_num_threads(cpu_threads)

    def process(self, batch: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, float]:
        pixels = image_at(batch, i)
        seed = zlib.crc32(str(batch["id"][i]).encode())
        out = render(colour_tensor(pixels, self.device), self.params, seed)
        return like_pixels(out, pixels, keep_grey=False), 0.0
