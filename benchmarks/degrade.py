"""Throughput of the degradation engine: milliseconds per megapixel per preset.

Degrades scikit-image's astronaut upscaled to 1024x1024 (1.05 MP) with ``degrade`` for each preset, over
several seeds because each seed draws a different plan (the cost depends on which ops it holds). Runs on the
CPU, and on CUDA too when available. Every plan runs once untimed first (allocator, lazy initialisation),
then is timed. Usage: ``python benchmarks/degrade.py [--repeats N] [--size PX] [--threads T]``; data-loader
workers usually run with one thread each, so ``--threads 1`` is the per-worker cost.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import skimage.data
import torch
import torch.nn.functional as F

from model.degradation.engine import PRESETS, apply_plan, sample_plan


def _photo(size: int, device: str) -> torch.Tensor:
    rgb = torch.from_numpy(skimage.data.astronaut()).permute(2, 0, 1).float()[None] / 255
    return (
        F.interpolate(rgb, size=(size, size), mode="bicubic", align_corners=False)[0].clamp(0, 1).to(device)
    )


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def bench(device: str, size: int, repeats: int) -> None:
    image = _photo(size, device)
    megapixels = size * size / 1e6
    for severity in PRESETS:
        plans = [sample_plan(np.random.default_rng(seed), size, size, severity) for seed in range(repeats)]
        for plan in plans:
            apply_plan(image, plan)
        _sync(device)
        times = []
        for plan in plans:
            start = time.perf_counter()
            apply_plan(image, plan)
            _sync(device)
            times.append((time.perf_counter() - start) * 1000 / megapixels)
        print(
            f"{device:>4} {severity:>6}: {statistics.mean(times):7.1f} ms/MP mean, "
            f"{statistics.median(times):7.1f} median, {min(times):6.1f}-{max(times):6.1f} range "
            f"over {repeats} plans, mean {statistics.mean(len(p.ops) for p in plans):.1f} ops"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="plans (seeds) per preset")
    parser.add_argument("--size", type=int, default=1024, help="square image side in px")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.size}x{args.size} image")
    for device in ["cpu"] + (["cuda"] if torch.cuda.is_available() else []):
        bench(device, args.size, args.repeats)


if __name__ == "__main__":
    main()
