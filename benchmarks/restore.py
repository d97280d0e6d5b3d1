"""End-to-end restoration throughput: the Ray Data pipeline vs a naive sequential loop, side by side.

Both restore the same images with the same model on the same machine. The naive loop does read -> decode ->
model -> encode -> write one image at a time in this process; the pipeline is `restore_archive` (local Ray,
local folders). Ray's start-up is timed and printed on its own, not hidden in either figure. It also prints
the generator-only forward rate on full tiles (the ceiling) and the fraction of it the pipeline reaches.

    python benchmarks/restore.py --images 200 --megapixels 1.0 [--model CKPT | --preset small | --identity]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image, ImageOps

from model.checkpoints import DEFAULT_CHECKPOINT, save_generator
from model.restoration.config import preset
from model.restoration.generator import Generator
from model.restoration.inference import restore_tensor
from pipeline.batch.config import PipelineConfig, RestoreJob
from pipeline.batch.driver import restore_archive
from pipeline.batch.restorer import Restorer
from pipeline.batch.summary import RunProgress
from pipeline.manifest import build_manifest
from pipeline.storage import Storage


def make_images(folder: Path, count: int, megapixels: float) -> None:
    side = round((megapixels * 1e6) ** 0.5)
    photo = Image.fromarray(skimage.data.astronaut()).resize((side, side), Image.Resampling.BICUBIC)
    for i in range(count):
        photo.rotate(i % 360).save(folder / f"scan{i:04d}.jpg", quality=90)


def naive(images: list[Path], out: Path, checkpoint: str, cfg: PipelineConfig) -> float:
    started = time.perf_counter()
    restorer = Restorer(checkpoint, pipeline=cfg)
    for path in images:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            pixels = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
        restored, _ = restorer.restore_pixels(pixels)
        buf = io.BytesIO()
        Image.fromarray(restored).save(buf, "JPEG", quality=95, subsampling=0)
        (out / path.name).write_bytes(buf.getvalue())
    return time.perf_counter() - started


def start_ray() -> float:
    """Start local Ray as `patina restore` does, and return the seconds it took: reported beside the
    pipeline's time, not hidden in it (a long job pays it once)."""
    import logging

    import ray

    started = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    return time.perf_counter() - started


def pipeline(manifest: Path, out: Path, checkpoint: str, cfg: PipelineConfig) -> tuple[float, float, int]:
    """(seconds for `restore_archive` on the Ray started by start_ray: planning, actor start-up, every row;
    seconds until the first rows were back; how many came back then). The difference is the start-up a
    job pays once, so the steady rate beside it is what a long job runs at."""
    started = time.perf_counter()
    first: list[tuple[float, int]] = []

    def on_progress(progress: RunProgress) -> None:
        if not first:
            first.append((time.perf_counter() - started, progress.processed))

    summary = restore_archive(
        RestoreJob(manifest=str(manifest), output=str(out), model=checkpoint, pipeline=cfg), on_progress
    )
    assert summary.failed == 0, summary.failures_by_reason
    first_at, first_rows = first[0] if first else (time.perf_counter() - started, 0)
    return time.perf_counter() - started, first_at, first_rows


def forward_ceiling(checkpoint: str, cfg: PipelineConfig, seconds: float = 10.0) -> float:
    """Megapixels per second of the generator alone on full tiles, on the restorer's device: the ceiling a
    pipeline could reach if reading, decoding, encoding and writing cost nothing."""
    restorer = Restorer(checkpoint, pipeline=cfg)
    tiles = torch.rand(cfg.tiles_per_batch, 3, cfg.tile, cfg.tile, device=restorer.device)
    sync = torch.cuda.synchronize if restorer.device.type == "cuda" else (lambda: None)
    restore_tensor(restorer.generator, tiles, restorer.autocast)  # warm-up
    sync()
    done, started = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - started < seconds:
        restore_tensor(restorer.generator, tiles, restorer.autocast)
        done += tiles.shape[0]
    sync()
    return done * cfg.tile * cfg.tile / 1e6 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--megapixels", type=float, default=1.0)
    parser.add_argument("--model", help="checkpoint; default: the shipped model, else an untrained --preset")
    parser.add_argument(
        "--preset", default="small", help="size of the untrained stand-in when no model ships"
    )
    parser.add_argument(
        "--identity",
        action="store_true",
        help="an untrained tiny generator (zero residual: returns its input) to measure the pipeline's own "
        "cost per row",
    )
    parser.add_argument(
        "--batch-size", type=int, default=PipelineConfig.batch_size, help="most rows per Ray Data block"
    )
    parser.add_argument("--ceiling-seconds", type=float, default=10.0, help="how long to time the generator")
    args = parser.parse_args()
    cfg = PipelineConfig(batch_size=args.batch_size)

    with tempfile.TemporaryDirectory(prefix="patina-bench-") as tmp:
        root = Path(tmp)
        checkpoint = args.model or (str(DEFAULT_CHECKPOINT) if DEFAULT_CHECKPOINT.exists() else None)
        if checkpoint is None or args.identity:
            name = "tiny" if args.identity else args.preset
            config = preset(name)
            checkpoint = str(root / f"untrained-{name}.safetensors")
            save_generator(checkpoint, Generator(config.generator), config)
        for sub in ("in", "naive", "pipeline"):
            (root / sub).mkdir()
        make_images(root / "in", args.images, args.megapixels)
        images = sorted((root / "in").glob("*.jpg"))
        build_manifest(str(root / "in"), str(root / "manifest.parquet"), Storage())
        device = "cuda" if torch.cuda.is_available() else "cpu"
        print(f"{args.images} images of {args.megapixels} MP, model {Path(checkpoint).name}, device {device}")

        t_naive = naive(images, root / "naive", checkpoint, cfg)
        t_ray = start_ray()
        t_pipe, t_first, first_rows = pipeline(root / "manifest.parquet", root / "pipeline", checkpoint, cfg)
        print(f"naive sequential loop: {args.images / t_naive:8.3f} images/s ({t_naive:.1f} s)")
        print(f"Ray Data pipeline:     {args.images / t_pipe:8.3f} images/s ({t_pipe:.1f} s, Ray already up)")
        if args.images > first_rows and t_pipe > t_first:
            steady = (args.images - first_rows) / (t_pipe - t_first)
            print(
                f"  of which start-up:   first {first_rows} rows back after {t_first:.1f} s; "
                f"then {steady:.3f} images/s"
            )
        print(f"Ray start:             {t_ray:.1f} s (paid once per job, not in the pipeline time)")
        with_start = t_naive / (t_pipe + t_ray)
        print(f"ratio pipeline / naive: {t_naive / t_pipe:.2f}x (with Ray start: {with_start:.2f}x)")
        print(
            f"cost per row: naive {t_naive / args.images * 1000:.1f} ms, "
            f"pipeline {t_pipe / args.images * 1000:.1f} ms"
        )
        ceiling = forward_ceiling(checkpoint, cfg, args.ceiling_seconds)
        reached = args.images * args.megapixels / t_pipe
        print(f"generator forward only: {ceiling:.2f} MP/s; pipeline reaches {reached / ceiling:.1%} of it")


if __name__ == "__main__":
    main()
