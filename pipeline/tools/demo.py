"""`make demo`: the main job on embedded defaults (local Ray, local folders).

It builds a small "archive" by degrading sample photos that ship with scikit-image, writes its manifest,
restores it with the batch pipeline, and writes gallery.html (before / after, sortable by defect coverage)
beside the results manifest. The samples are public domain or CC0 (astronaut: NASA; camera, coffee,
chelsea, coins; rocket: SpaceX, released into the public domain), read from scikit-image's installed data:
nothing is downloaded and no image is copied into the repository.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import skimage.data
import torch
from PIL import Image

from model.checkpoints import DEFAULT_CHECKPOINT, save_generator
from model.degradation.engine import apply_plan, image_to_tensor, sample_plan, tensor_to_image
from model.metrics import psnr, ssim
from model.restoration.config import small
from model.restoration.generator import Generator
from pipeline.batch.config import PipelineConfig, RestoreJob
from pipeline.batch.driver import restore_archive
from pipeline.batch.summary import RunSummary
from pipeline.tools.gallery import write_gallery

# (scikit-image sample, severity). Every sample appears at two severities.
SAMPLES = tuple(
    (name, severity)
    for name in ("astronaut", "camera", "chelsea", "coffee", "rocket")
    for severity in ("medium", "heavy")
)


@dataclass(frozen=True)
class DemoScore:
    name: str
    severity: str
    psnr_degraded: float
    psnr_restored: float
    ssim_degraded: float
    ssim_restored: float


def build_archive(out_dir: Path, samples: tuple[tuple[str, str], ...] = SAMPLES, seed: int = 0) -> Path:
    """Degrade the samples into ``out_dir/archive/*.jpg`` (scanned old prints), keep the clean targets in
    ``out_dir/clean/`` and write ``out_dir/manifest.parquet`` with `severity` and `clean_uri` columns."""
    archive, clean_dir = out_dir / "archive", out_dir / "clean"
    archive.mkdir(parents=True, exist_ok=True)
    clean_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[str]] = {"uri": [], "severity": [], "clean_uri": []}
    for i, (name, severity) in enumerate(samples):
        clean = image_to_tensor(Image.fromarray(getattr(skimage.data, name)()))  # (3, H, W) in [0, 1]
        plan = sample_plan(np.random.default_rng([seed, i]), clean.shape[1], clean.shape[2], severity)
        degraded, target, _ = apply_plan(clean, plan)
        stem = f"{name}-{severity}"
        tensor_to_image(degraded).save(archive / f"{stem}.jpg", quality=92)
        tensor_to_image(target).save(clean_dir / f"{stem}.png")
        rows["uri"].append(str((archive / f"{stem}.jpg").resolve()))
        rows["severity"].append(severity)
        rows["clean_uri"].append(str((clean_dir / f"{stem}.png").resolve()))
    manifest = out_dir / "manifest.parquet"
    pq.write_table(pa.table(rows), manifest)
    return manifest


def demo_model(out_dir: Path) -> tuple[str, str]:
    """The shipped default model, or (in a checkout without it) an untrained `small` generator, which
    returns its input unchanged. Returns (checkpoint path, description)."""
    if DEFAULT_CHECKPOINT.exists():
        return str(DEFAULT_CHECKPOINT), f"default model {DEFAULT_CHECKPOINT.name}"
    torch.manual_seed(0)
    path = out_dir / "untrained-small.safetensors"
    save_generator(path, Generator(small().generator), small(), data="untrained")
    return str(path), f"untrained small generator ({DEFAULT_CHECKPOINT.name} is missing: output = input)"


def score(results: pa.Table) -> list[DemoScore]:
    """PSNR / SSIM of the degraded input and of the restoration against the clean target, per ok row."""
    scores = []
    for row in results.filter(pc.equal(results["status"], "ok")).to_pylist():
        with (
            Image.open(row["clean_uri"]) as c,
            Image.open(row["uri"]) as d,
            Image.open(row["output_uri"]) as r,
        ):
            clean, degraded, restored = (np.asarray(im.convert("RGB")) for im in (c, d, r))
        scores.append(
            DemoScore(
                Path(row["uri"]).stem,
                row["severity"],
                psnr(degraded, clean),
                psnr(restored, clean),
                ssim(degraded, clean),
                ssim(restored, clean),
            )
        )
    return scores


def run_demo(
    out_dir: Path, model: str | None = None, samples: tuple[tuple[str, str], ...] = SAMPLES, seed: int = 0
) -> tuple[RunSummary, list[DemoScore], str, Path]:
    """Build the archive, restore it, score it, write the gallery. Returns (summary, scores, model, page)."""
    out_dir = out_dir.resolve()
    manifest = build_archive(out_dir, samples, seed)
    # The demo's restored/ is its own scratch output: start it afresh so a new model (or seed) is shown,
    # rather than resuming the previous demo run.
    shutil.rmtree(out_dir / "restored", ignore_errors=True)
    checkpoint, description = (model, f"model {model}") if model else demo_model(out_dir)
    job = RestoreJob(
        manifest=str(manifest),
        output=str(out_dir / "restored"),
        model=checkpoint,
        pipeline=PipelineConfig(masks=True),
    )
    summary = restore_archive(job)
    results = pq.read_table(summary.results_uri)
    page = write_gallery(results, out_dir, title=f"patina demo: {description}")
    return summary, score(results), description, page
