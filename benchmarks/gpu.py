"""Every throughput figure a lent GPU should give us, in one command (#12), written to OUT/gpu.json.

Sections, each recording its figures or why it was skipped (nothing here crashes without CUDA or Ray):
- ``forward``: generator-only forward rate (MP/s) of the ``small`` and ``large`` presets on full tiles, bf16
  autocast with channels_last on CUDA, by batch size. ``small`` uses the shipped weights when they load.
- ``train``: training throughput (MP/s) of both presets, stage 1 and stage 2, on one fixed batch (the
  model-only rate; the data side is ``benchmarks/train_speed.py``, which needs Ray).
- ``degradation``: the degradation engine on a 1 MP photo, CUDA vs CPU (images/s).
- ``restore``: the naive loop and the Ray Data pipeline on local 1 MP and 4 MP JPEGs (images/s, MP/s, and
  the fraction of the generator-only ceiling); needs ray and pyarrow (``benchmarks/gpu.sh`` installs carried
  wheels first).

    python benchmarks/gpu.py --out "$OUT"            # on the GPU machine, ~4-6 minutes
    python benchmarks/gpu.py --out /tmp/g --quick    # plumbing check, any machine, ~1 minute
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a bare checkout, not installed

from model.restoration.config import preset
from model.restoration.gan import Batch, RestorationGAN
from model.restoration.generator import Generator
from model.restoration.inference import restore_tensor


def timed(
    fn: Callable[[], object], sync: Callable[[], None], seconds: float, warmup: int = 2
) -> tuple[int, float]:
    """(calls, seconds) of calling ``fn`` for at least ``seconds`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    sync()
    calls, started = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - started < seconds:
        fn()
        calls += 1
    sync()
    return calls, time.perf_counter() - started


def generator_for(name: str, device: torch.device) -> tuple[torch.nn.Module, str]:
    if name == "small":
        try:
            from model.checkpoints import DEFAULT_CHECKPOINT, load_generator

            generator, _, model_id = load_generator(DEFAULT_CHECKPOINT, device=device)
            return generator.eval(), model_id
        except Exception as exc:  # no safetensors on a bare machine: the same architecture, untrained
            print(f"shipped model not loaded ({exc}); timing an untrained small generator")
    return Generator(preset(name).generator).to(device).eval(), f"untrained-{name}"


def forward(device: torch.device, sync, quick: bool) -> dict:
    autocast = torch.bfloat16 if device.type == "cuda" else None
    tile, batches, seconds = (64, (1, 2), 0.3) if quick else (512, (1, 4, 8, 16), 3.0)
    out = {}
    for name in ("tiny",) if quick else ("small", "large"):
        generator, model_id = generator_for(name, device)
        if device.type == "cuda":
            generator = generator.to(memory_format=torch.channels_last)
        rates = {}
        for batch in batches:
            x = torch.rand(batch, 3, tile, tile, device=device)
            calls, took = timed(lambda x=x, g=generator: restore_tensor(g, x, autocast), sync, seconds)
            rates[str(batch)] = round(calls * batch * tile * tile / 1e6 / took, 3)
        out[name] = {"model": model_id, "tile": tile, "autocast": str(autocast), "mp_per_s_by_batch": rates}
        print(f"forward {name}: {rates} MP/s by batch ({tile} px tiles)")
    return out


def train(device: torch.device, sync, quick: bool) -> dict:
    out = {}
    for name in ("tiny",) if quick else ("small", "large"):
        cfg = preset(name)
        t = cfg.train
        crop = t.crop
        images = torch.rand(t.batch_size, 3, crop, crop, device=device) * 2 - 1
        batch = Batch(images, images, torch.zeros(t.batch_size, 1, crop, crop, device=device))
        rates = {}
        for stage, progress in ((1, 0.5 * t.gan_start), (2, min(1.0, t.gan_start + 1e-6))):
            gan = RestorationGAN(cfg, device)
            calls, took = timed(
                lambda gan=gan, p=progress, b=batch: gan.train_step(b, p), sync, 1.0 if quick else 8.0
            )
            rates[f"stage{stage}"] = round(calls * t.batch_size * crop * crop / 1e6 / took, 3)
        out[name] = {"batch": t.batch_size, "crop": crop, "mp_per_s": rates}
        print(f"train {name}: {rates} MP/s (model only, batch {t.batch_size} x {crop}^2)")
    return out


def degradation(device: torch.device, sync, quick: bool) -> dict:
    import numpy as np

    from model.degradation.engine import apply_plan, sample_plan

    side = 128 if quick else 1000
    clean = torch.rand(3, side, side)
    plans = [sample_plan(np.random.default_rng(i), side, side, "medium") for i in range(4)]
    out = {}
    for where in ["cpu"] + (["cuda"] if device.type == "cuda" else []):
        image = clean.to(where)
        sync_here = torch.cuda.synchronize if where == "cuda" else (lambda: None)
        state = {"i": 0}

        def one(image=image, state=state) -> None:
            apply_plan(image, plans[state["i"] % len(plans)])
            state["i"] += 1

        calls, took = timed(one, sync_here, 0.5 if quick else 5.0, warmup=1)
        out[where] = {"images_per_s": round(calls / took, 3), "megapixels": side * side / 1e6}
    if "cuda" not in out:
        out["cuda"] = {"skipped": "no CUDA device"}
    print(f"degradation engine: {out}")
    return out


def restore(device: torch.device, quick: bool, ceiling: float | None) -> dict:
    try:
        import ray  # noqa: F401

        from benchmarks.restore import make_images, naive, pipeline, start_ray
        from pipeline.batch.config import PipelineConfig
        from pipeline.manifest import build_manifest
        from pipeline.storage import Storage
    except ImportError as exc:
        return {"skipped": f"needs the pipeline's packages ({exc}); run benchmarks/gpu.sh with wheels/"}
    from model.checkpoints import DEFAULT_CHECKPOINT

    cfg = PipelineConfig()
    sizes = ((0.02, 3),) if quick else ((1.0, 64), (4.0, 16))
    out: dict = {"ray_start_s": round(start_ray(), 2)}
    for megapixels, count in sizes:
        with tempfile.TemporaryDirectory(prefix="patina-gpu-") as tmp:
            root = Path(tmp)
            for sub in ("in", "naive", "pipeline"):
                (root / sub).mkdir()
            make_images(root / "in", count, megapixels)
            build_manifest(str(root / "in"), str(root / "manifest.parquet"), Storage())
            images = sorted((root / "in").glob("*.jpg"))
            t_naive = naive(images, root / "naive", str(DEFAULT_CHECKPOINT), cfg)
            t_pipe, t_first, first_rows = pipeline(
                root / "manifest.parquet", root / "pipeline", str(DEFAULT_CHECKPOINT), cfg
            )
        figures = {
            "images": count,
            "naive_images_per_s": round(count / t_naive, 3),
            "pipeline_images_per_s": round(count / t_pipe, 3),
            "pipeline_mp_per_s": round(count * megapixels / t_pipe, 3),
            "ratio_pipeline_naive": round(t_naive / t_pipe, 3),
            "pipeline_first_rows_s": round(t_first, 2),  # start-up: actors, Ray Data
        }
        if count > first_rows and t_pipe > t_first:
            figures["pipeline_steady_images_per_s"] = round((count - first_rows) / (t_pipe - t_first), 3)
        if ceiling:
            figures["fraction_of_forward_ceiling"] = round(count * megapixels / t_pipe / ceiling, 3)
        out[f"{megapixels:g}MP"] = figures
        print(f"restore {megapixels:g} MP: {figures}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu.json")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check the plumbing on any machine")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    report: dict = {
        "device": torch.cuda.get_device_name(0)
        if cuda
        else f"cpu ({platform.processor() or platform.machine()})",
        "cuda": torch.version.cuda if cuda else "not available: GPU figures skipped, CPU figures only",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "quick": args.quick,
    }
    sections = {
        "forward": lambda: forward(device, sync, args.quick),
        "train": lambda: train(device, sync, args.quick),
        "degradation": lambda: degradation(device, sync, args.quick),
    }
    for name, run in sections.items():
        try:
            report[name] = run()
        except Exception as exc:  # one broken section must not lose the others' figures
            report[name] = {"failed": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
        (args.out / "gpu.json").write_text(json.dumps(report, indent=2))
    rates = report.get("forward", {}).get("tiny" if args.quick else "small", {}).get("mp_per_s_by_batch", {})
    try:
        report["restore"] = restore(device, args.quick, max(rates.values()) if rates else None)
    except Exception as exc:
        report["restore"] = {"failed": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}
    (args.out / "gpu.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'gpu.json'}")


if __name__ == "__main__":
    main()
