"""Training throughput of a preset, data pipeline included, beside the model-only rate in the same process.

- model-only: ``RestorationGAN.train_step`` on one fixed batch held in memory (the ceiling);
- with data: the same steps drawing every batch from ``PairPool`` (pairs rendered by the blind degradation
  mixture, refreshed in the background while each step trains), as ``patina train`` does.
Both for stage 1 (reconstruction) and stage 2 (adversarial). Photos are scikit-image's samples, so it runs
anywhere. Usage: ``python benchmarks/train_speed.py --preset small [--steps 12] [--device cpu|cuda]``
Prints ``train throughput: X MP/s`` (data included) and the model-only rate beside it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import skimage.data
import torch

from model.restoration.config import preset
from model.restoration.gan import RestorationGAN
from model.restoration.inference import default_autocast
from pipeline.training.data import PairPool


def _photos() -> list[np.ndarray]:
    return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]


def _rate(gan: RestorationGAN, next_batch, progress: float, steps: int, pixels: int) -> float:
    """Megapixels of training crops per second over ``steps`` steps, after two warm-up steps."""
    for step in range(2):
        gan.train_step(next_batch(step), progress)
    started = time.perf_counter()
    for step in range(2, steps + 2):
        gan.train_step(next_batch(step), progress)
    return steps * pixels / (time.perf_counter() - started) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--crop", type=int)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--fp32", action="store_true", help="no bf16 autocast")
    args = parser.parse_args()
    cfg = preset(args.preset).with_train(batch_size=args.batch_size, crop=args.crop)
    t, device = cfg.train, torch.device(args.device)
    autocast = None if args.fp32 else default_autocast(device)
    pixels = t.batch_size * t.crop * t.crop
    pool = PairPool(_photos(), t.crop, cfg.degradation.mixture, 0, 0, t.pool_size, t.pool_refresh, device)
    started = time.perf_counter()
    fixed = pool.batch(0, t.batch_size)  # fills the pool
    fill_s = time.perf_counter() - started
    print(
        f"preset {args.preset}: batch {t.batch_size} x {t.crop}^2, device {device}, autocast {autocast}, "
        f"threads {torch.get_num_threads()}, pool {t.pool_size} pairs filled in {fill_s:.1f} s "
        f"(refresh {t.pool_refresh} per step)"
    )
    for stage, progress in ((1, 0.5 * t.gan_start), (2, min(1.0, t.gan_start + 1e-6))):
        torch.manual_seed(0)
        gan = RestorationGAN(cfg, device, autocast_dtype=autocast)
        model_only = _rate(gan, lambda _step: fixed, progress, args.steps, pixels)
        with_data = _rate(gan, lambda step: pool.batch(step, t.batch_size), progress, args.steps, pixels)
        print(
            f"stage {stage}: train throughput: {with_data:.2f} MP/s (data included); model-only "
            f"{model_only:.2f} MP/s; ratio {with_data / model_only:.2f}"
        )


if __name__ == "__main__":
    main()
