"""Where should training degradations run? Training steps per second with degradations applied on the
training device inside the loop (``--degrade-on device``) versus in a CPU prefetch thread that prepares the
next batch while the current step trains (``--degrade-on cpu``).

Both variants run the same seeded batches through the same ``RestorationGAN.train_step`` in this process, one
after the other, without Ray (the choice is inside each worker, so Ray adds nothing to compare). Photos are
scikit-image's samples, so it runs anywhere. Usage:
``python benchmarks/train_degrade.py [--preset base] [--batch-size 8] [--crop 128] [--steps 8]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import skimage.data
import torch

from model.config import preset
from model.gan import RestorationGAN
from pipeline.train_data import PairSampler


def _photos() -> list[np.ndarray]:
    return [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(), skimage.data.rocket()]


def steps_per_second(cfg, device: torch.device, sampler_device: torch.device, steps: int) -> float:
    torch.manual_seed(0)
    autocast = torch.bfloat16 if device.type == "cuda" else None
    gan = RestorationGAN(cfg, device, autocast_dtype=autocast)
    train = cfg.train
    sampler = PairSampler(
        _photos(),
        train.crop,
        cfg.degradation.severities,
        cfg.degradation.severity_weights,
        0,
        0,
        sampler_device,
    )

    def step(i: int) -> None:
        batch = sampler.batch(i, train.batch_size)
        batch.degraded, batch.clean, batch.defect_mask = (
            t.to(device, non_blocking=True) for t in (batch.degraded, batch.clean, batch.defect_mask)
        )
        gan.train_step(batch)

    step(0)  # warm-up: allocator, lazy init, first prefetch
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(1, steps + 1):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    cfg = preset(args.preset).with_train(batch_size=args.batch_size, crop=args.crop)
    device = torch.device(args.device)
    in_loop = steps_per_second(cfg, device, device, args.steps)
    prefetch = steps_per_second(cfg, device, torch.device("cpu"), args.steps)
    images = args.batch_size
    print(f"device {device}, torch threads {torch.get_num_threads()}, preset {args.preset}, "
          f"batch {args.batch_size}x{args.crop}px, {args.steps} timed steps each")  # fmt: skip
    print(f"degrade on device (in loop): {in_loop:.3f} steps/s = {in_loop * images:.2f} images/s")
    print(f"degrade on cpu (prefetch):   {prefetch:.3f} steps/s = {prefetch * images:.2f} images/s")
    print(f"ratio cpu-prefetch / device: {prefetch / in_loop:.2f}x")


if __name__ == "__main__":
    main()
