"""What ``--tone auto`` costs: the same images restored in-process with ``--tone keep`` and ``--tone auto``,
side by side, and the tone stage alone (estimate + LUT + apply) per megapixel. ``--faded`` ages the photos
first (a fade toward a yellowed paper), so the correction is applied rather than found to be nothing.

    python benchmarks/tone.py --images 10 --megapixels 1.0 [--faded]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import skimage.data
import torch
from PIL import Image

from model.degradation import aging
from model.files import DEFAULT_CHECKPOINT
from model.tone.inference import auto_tone, load_estimator
from pipeline.batch.config import PipelineConfig
from pipeline.batch.restorer import Restorer


def photos(count: int, megapixels: float, faded: bool) -> list[np.ndarray]:
    side = round((megapixels * 1e6) ** 0.5)
    photo = Image.fromarray(skimage.data.astronaut()).resize((side, side), Image.Resampling.BICUBIC)
    if faded:
        x = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float() / 255
        x = aging.fade(x, 0.35, [0.93, 0.88, 0.74])
        photo = Image.fromarray((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    return [np.asarray(photo.rotate(i * 7)) for i in range(count)]


def seconds(restorer: Restorer, images: list[np.ndarray]) -> float:
    restorer.restore_toned(images[0])  # warm-up: first-call allocations are not the stage's cost
    started = time.perf_counter()
    for pixels in images:
        restorer.restore_toned(pixels)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--faded", action="store_true", help="age the photos so there is a fade to undo")
    args = parser.parse_args()
    images = photos(args.images, args.megapixels, args.faded)
    keep = Restorer(str(DEFAULT_CHECKPOINT), pipeline=PipelineConfig(tone="keep"))
    auto = Restorer(str(DEFAULT_CHECKPOINT), pipeline=PipelineConfig(tone="auto"))
    t_keep, t_auto = seconds(keep, images), seconds(auto, images)
    estimator = load_estimator()
    tensors = [torch.from_numpy(p.copy()).permute(2, 0, 1).float() / 255 for p in images]
    auto_tone(tensors[0], estimator)
    started = time.perf_counter()
    for tensor in tensors:
        auto_tone(tensor, estimator)
    t_stage = time.perf_counter() - started
    kind = "faded" if args.faded else "unfaded"
    print(f"{args.images} {kind} images of {args.megapixels} MP, {torch.get_num_threads()} threads")
    print(f"restore, --tone keep: {args.images / t_keep:.3f} images/s")
    print(f"restore, --tone auto: {args.images / t_auto:.3f} images/s")
    print(f"ratio auto / keep: {t_keep / t_auto:.3f}x")
    print(f"tone stage alone: {t_stage / args.images / args.megapixels * 1000:.0f} ms per megapixel")


if __name__ == "__main__":
    main()
