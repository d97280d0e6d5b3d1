"""Speed of the period-print renderer per era and of the reference-guided retro model, beside the
restoration generator on the same image, in one process: megapixels per second and the ratio to the
restoration generator.

    .venv/bin/python benchmarks/retro_speed.py --megapixels 6 --repeat 3
"""

from __future__ import annotations

import argparse
import time

import torch

from model.checkpoints import DEFAULT_CHECKPOINT, DEFAULT_RETRO_CHECKPOINT, load_generator
from model.restoration.inference import default_autocast, restore_tensor
from model.retro.eras import ERAS
from model.retro.generator import stylize
from model.retro.render import render


def rate(fn, megapixels: float, repeat: int) -> float:
    fn()  # warm-up (first call imports colour-science, builds kernels)
    started = time.perf_counter()
    for _ in range(repeat):
        fn()
    return megapixels * repeat / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megapixels", type=float, default=6.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--retro-model", default=str(DEFAULT_RETRO_CHECKPOINT), help="retro checkpoint")
    args = parser.parse_args()
    device = torch.device(args.device)
    height = int((args.megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(height * 4 / 3)
    megapixels = height * width / 1e6
    image = torch.rand(3, height, width, device=device)
    generator, _, _ = load_generator(DEFAULT_CHECKPOINT, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def restore() -> None:
        restore_tensor(generator, image[None], torch.bfloat16 if device.type == "cuda" else None)
        sync()

    base = rate(restore, megapixels, args.repeat)
    print(f"{width}x{height} ({megapixels:.1f} MP) on {device}, threads {torch.get_num_threads()}")
    print(f"restoration generator (shipped): {base:.2f} MP/s")
    for name, params in ERAS.items():

        def look(params=params) -> None:
            render(image, params, seed=0)
            sync()

        mps = rate(look, megapixels, args.repeat)
        print(f"{name:22s} {mps:6.2f} MP/s  ({mps / base:.1f}x the generator)")
    retro, _, _ = load_generator(args.retro_model, device=device)
    with torch.no_grad():
        style = retro.encoder(torch.rand(1, 3, 256, 192, device=device) * 2 - 1)
    photo = image[None] * 2 - 1

    def transfer() -> None:
        autocast = default_autocast(device)
        with torch.autocast(device.type, dtype=autocast or torch.bfloat16, enabled=autocast is not None):
            stylize(retro, photo, style)
        sync()

    mps = rate(transfer, megapixels, args.repeat)
    print(f"{'retro model (reference)':22s} {mps:6.2f} MP/s  ({mps / base:.1f}x the generator)")


if __name__ == "__main__":
    main()
