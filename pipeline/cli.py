"""The `patina` command. Each subcommand parses options, calls one library function and prints a result.

Errors a user can cause end as one line on stderr and exit code 2, never a stack trace.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from model.checkpoints import CheckpointError
from pipeline.storage import StorageError

app = typer.Typer(
    help="patina: restore scanned old photographs with a GAN, from one folder to archives of millions.",
    no_args_is_help=True,
    add_completion=False,
)
model_app = typer.Typer(help="Inspect restoration models.", no_args_is_help=True)
app.add_typer(model_app, name="model")
retro_app = typer.Typer(help="Give modern photos a period look (docs/RETRO.md).", no_args_is_help=True)
app.add_typer(retro_app, name="retro")
manifest_app = typer.Typer(
    help="Build and inspect Parquet manifests of archive images.", no_args_is_help=True
)
app.add_typer(manifest_app, name="manifest")
console = Console()

USER_ERRORS = (
    CheckpointError,
    StorageError,
    ValueError,
    FileNotFoundError,
    NotADirectoryError,
    PermissionError,
)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn errors a user can cause into a one-line message."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            print(f"patina: error: {exc}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


@model_app.command("info")
@user_errors
def model_info(preset: str = typer.Option("small", help="Model size preset: tiny, small or large.")) -> None:
    """Print parameters and GFLOPs per megapixel of the generator and discriminator."""
    from model.restoration.config import preset as get_preset
    from model.restoration.info import describe

    table = Table(title=f"patina model preset '{preset}'")
    for column in ("network", "parameters", "GFLOPs / megapixel"):
        table.add_column(column, justify="right" if column != "network" else "left")
    for net in describe(get_preset(preset)):
        table.add_row(net.name, f"{net.parameters:,}", f"{net.gflops_per_megapixel:,.1f}")
    console.print(table)


@model_app.command("evaluate")
@user_errors
def model_evaluate(
    val: Path = typer.Option(..., help="Folder of clean validation photos."),
    model: str | None = typer.Option(None, help="Checkpoint (local or s3://); default: the shipped model."),
    baseline: bool = typer.Option(True, help="Also score the classical baseline."),
    sets: str = typer.Option("light,medium,heavy,published,clean", help="Comma-separated validation sets."),
    limit: int | None = typer.Option(None, help="Score only the first N photos (sorted by name)."),
    max_side: int | None = typer.Option(None, help="Centre-crop photos to this square side."),
    seed: int = typer.Option(0, help="Seed of the fixed degraded copies."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the table as JSON here."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """Mean PSNR / SSIM / texture (high-frequency energy, restored / clean) and the worst photo's PSNR on
    fixed copies of VAL: the engine's light, medium and heavy, the published BOPBtL recipe, and the
    untouched clean photos; degraded input, classical baseline and the model side by side."""
    import dataclasses
    import json

    from model.checkpoints import DEFAULT_CHECKPOINT, load_generator
    from model.restoration.validation import evaluate
    from pipeline.storage import Storage, StorageOptions

    uri = model or str(DEFAULT_CHECKPOINT)
    generator, meta, model_id = load_generator(uri, Storage(StorageOptions(endpoint_url=endpoint_url)))
    chosen = tuple(name.strip() for name in sets.split(",") if name.strip())
    results = evaluate(
        val, generator, baseline=baseline, seed=seed, limit=limit, max_side=max_side, sets=chosen
    )
    table = Table(title=f"{model_id} on {val}")
    for column in ("set", "method", "PSNR dB", "worst PSNR dB", "SSIM", "texture"):
        table.add_column(column, justify="left" if column in ("set", "method") else "right")
    for name in chosen:
        for method, scores in results.items():
            s = scores[name]
            table.add_row(
                name, method, f"{s.psnr:.2f}", f"{s.psnr_min:.2f}", f"{s.ssim:.4f}", f"{s.hf_ratio:.3f}"
            )
        table.add_section()
    console.print(table)
    if json_out:
        table_json = {
            m: {k: dataclasses.asdict(v) for k, v in by_set.items()} for m, by_set in results.items()
        }
        payload = {
            "model": uri,
            "model_id": model_id,
            "step": meta.step,
            "val": str(val),
            "seed": seed,
            **table_json,
        }
        json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


@app.command()
@user_errors
def degrade(
    src: Path = typer.Argument(..., help="Folder of clean photos."),
    dst: Path = typer.Argument(..., help="Folder for degraded copies, clean targets and defect masks."),
    preset: str = typer.Option("medium", "--preset", help="Severity: light, medium or heavy."),
    seed: int = typer.Option(0, help="Same seed, same bytes."),
) -> None:
    """Write synthetic old-photo versions of clean photos: <name>.png, <name>.clean.png, <name>.mask.png."""
    from pipeline.local import degrade_folder

    count = sum(1 for _ in degrade_folder(src, dst, preset, seed))
    console.print(f"degraded {count} images ({preset}, seed {seed}) into {dst}")


@app.command()
@user_errors
def baseline(
    src: Path = typer.Argument(..., help="Folder of degraded photos (scans, or a `patina degrade` folder)."),
    dst: Path = typer.Argument(..., help="Folder for the restored copies, <name>.png."),
) -> None:
    """Restore a folder without a GAN: impulse-noise median, non-local means, scratch and dust inpainting,
    tone and black point. The classical bar the model must clear. Re-running skips images already done."""
    from pipeline.local import baseline_folder

    counts = {"ok": 0, "skipped": 0, "failed": 0}
    for outcome in baseline_folder(src, dst):
        counts[outcome.status] += 1
        if outcome.error:
            console.print(f"  failed: {outcome.error}", markup=False, highlight=False)
    console.print(
        f"restored {counts['ok']} images into {dst} "
        f"({counts['skipped']} already there, {counts['failed']} failed)",
        soft_wrap=True,
    )
    if counts["failed"]:
        raise typer.Exit(1)


@retro_app.command("eras")
@user_errors
def retro_eras(
    name: str | None = typer.Argument(None, help="Print this era's parameters as JSON."),
) -> None:
    """List the era presets, or print one era's renderer parameters as JSON (edit it, pass --params)."""
    from model.retro.eras import ERAS, era

    if name:
        print(era(name).to_json())
        return
    table = Table(title="era presets (model/retro/eras.py, sources in docs/RETRO.md)")
    for column in ("era", "sensitivity", "grain", "negative mm", "print mm"):
        table.add_column(column)
    for key, p in ERAS.items():
        table.add_row(key, p.sensitivity, f"{p.grain:g}", f"{p.format_mm:g}", f"{p.print_mm:g}")
    console.print(table)


@retro_app.command("render")
@user_errors
def retro_render(
    src: Path = typer.Argument(..., help="Folder of modern photos."),
    dst: Path = typer.Argument(..., help="Folder for the period prints, <name>.png."),
    era_name: str | None = typer.Option(None, "--era", help="Era preset (patina retro eras)."),
    params: Path | None = typer.Option(None, help="Renderer parameters as JSON instead of an era."),
    seed: int = typer.Option(0, help="Seed of grain and wear: same seed, same prints."),
) -> None:
    """Render a folder as period prints with the parametric renderer. Re-running skips images already done."""
    from model.retro.eras import era
    from model.retro.params import RetroParams
    from pipeline.local import stylize_folder

    if (era_name is None) == (params is None):
        raise ValueError("give exactly one of --era NAME or --params FILE.json")
    look = era(era_name) if era_name else RetroParams.from_json(params.read_text())
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    for outcome in stylize_folder(src, dst, look, seed):
        counts[outcome.status] += 1
        if outcome.error:
            console.print(f"  failed: {outcome.error}", markup=False, highlight=False)
    console.print(
        f"rendered {counts['ok']} images as {era_name or params} into {dst} "
        f"({counts['skipped']} already there, {counts['failed']} failed)",
        soft_wrap=True,
    )
    if counts["failed"]:
        raise typer.Exit(1)


@retro_app.command("gallery")
@user_errors
def retro_gallery(
    src: Path = typer.Argument(..., help="Folder of photos."),
    dst: Path = typer.Argument(..., help="Folder for retro.html and its thumbnails."),
    eras: str | None = typer.Option(None, help="Comma-separated eras; default: all."),
    side: int = typer.Option(384, help="Long side of each rendered thumbnail, px."),
    seed: int = typer.Option(0, help="Seed of grain and wear."),
) -> None:
    """An HTML grid: one row per photo, one column per era."""
    from model.retro.eras import ERAS
    from pipeline.retro_gallery import write_retro_gallery

    names = [e.strip() for e in eras.split(",")] if eras else list(ERAS)
    page = write_retro_gallery(src, dst, names, side, seed)
    console.print(f"wrote {page}")


@retro_app.command("evaluate")
@user_errors
def retro_evaluate(
    val: Path = typer.Option(..., help="Folder of photos the looks are scored on."),
    limit: int | None = typer.Option(None, help="Score only the first N photos (sorted by name)."),
    max_side: int = typer.Option(384, help="Scale photos to this long side first."),
    seed: int = typer.Option(0, help="Seed of the sampled looks."),
) -> None:
    """Score reference-guided transfer where the truth is known (the look of photo A rendered on photo B),
    for the classical baselines, and how much of each photo's luminance structure every era keeps."""
    from model.retro.baselines import BASELINES
    from model.retro.evaluation import content_preservation, load_photos, score_transfer, transfer_set

    photos = load_photos(val, limit, max_side)
    pairs = transfer_set(photos, seed)
    table = Table(title=f"look transfer on {len(pairs)} photos of {val} (target: B rendered with A's look)")
    for column in ("method", "PSNR dB", "worst PSNR dB", "SSIM"):
        table.add_column(column, justify="left" if column == "method" else "right")
    methods = {"untouched photo": lambda photo, reference: photo, **BASELINES}
    for name, transfer in methods.items():
        s = score_transfer(pairs, transfer)
        table.add_row(name, f"{s['psnr']:.2f}", f"{s['psnr_min']:.2f}", f"{s['ssim']:.4f}")
    console.print(table)
    kept = Table(title="content kept: SSIM of the print's luminance against the photo's")
    kept.add_column("era")
    kept.add_column("SSIM", justify="right")
    for name, value in content_preservation(photos, seed).items():
        kept.add_row(name, f"{value:.3f}")
    console.print(kept)


@app.command()
@user_errors
def evaluate(
    restored: Path = typer.Option(..., help="Folder of restored images."),
    clean: Path = typer.Option(..., help="Folder of clean images with the same file stems."),
    pred_masks: Path | None = typer.Option(None, help="Folder of predicted <name>.mask.png."),
    true_masks: Path | None = typer.Option(
        None, help="Folder of true <name>.mask.png (e.g. a degrade folder)."
    ),
) -> None:
    """Print PSNR, SSIM (and defect-mask IoU) per image and their means."""
    from pipeline.local import evaluate_folders

    scores = evaluate_folders(restored, clean, pred_masks, true_masks)
    with_iou = scores[0].mask_iou is not None
    table = Table(title=f"{restored} vs {clean}")
    for column in ("image", "PSNR dB", "SSIM", *(["mask IoU"] if with_iou else [])):
        table.add_column(column, justify="left" if column == "image" else "right")
    for s in scores:
        table.add_row(s.name, _db(s.psnr), f"{s.ssim:.4f}", *([f"{s.mask_iou:.3f}"] if with_iou else []))
    finite = [s.psnr for s in scores if math.isfinite(s.psnr)]
    mean_iou = [f"{sum(s.mask_iou for s in scores) / len(scores):.3f}"] if with_iou else []
    table.add_section()
    table.add_row(
        f"mean of {len(scores)}",
        _db(sum(finite) / len(finite) if finite else math.inf),
        f"{sum(s.ssim for s in scores) / len(scores):.4f}",
        *mean_iou,
    )
    console.print(table)


@manifest_app.command("build")
@user_errors
def manifest_build(
    source: str = typer.Argument(..., help="s3://bucket/prefix or a local folder to list."),
    out: str = typer.Argument(
        ..., help="Manifest to write (local path or s3:// URI), e.g. manifest.parquet."
    ),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """List an S3 prefix or a folder (streaming, bounded memory) into a Parquet manifest of its images."""
    from pipeline.manifest import build_manifest
    from pipeline.storage import Storage, StorageOptions

    count = build_manifest(source, out, Storage(StorageOptions(endpoint_url=endpoint_url)))
    console.print(f"wrote {count:,} images to {out}")


@app.command()
@user_errors
def restore(
    manifest: str = typer.Option(..., help="Input manifest (Parquet with a `uri` column), local or s3://."),
    output: str = typer.Option(
        ..., help="Output prefix (local folder or s3://bucket/prefix), outside the input."
    ),
    model: str | None = typer.Option(None, help="Checkpoint (.safetensors); default: the shipped model."),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster (ray://host:10001 or auto); default: local."
    ),
    batch_size: int = typer.Option(8, help="Images per Ray Data batch."),
    tile: int = typer.Option(512, help="Tile size in pixels for large scans."),
    overlap: int = typer.Option(32, help="Tile overlap in pixels (blended, no seams)."),
    tiles_per_batch: int = typer.Option(8, help="Tiles per generator forward (bounds GPU memory)."),
    output_format: str = typer.Option("same", "--format", help="same | png | jpeg | tiff | webp"),
    max_pixels: int = typer.Option(200_000_000, help="Refuse images with more pixels (decompression bombs)."),
    limit: int | None = typer.Option(None, help="Restore at most N of the remaining rows."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
    dashboard: bool = typer.Option(False, help="Start the Ray dashboard with local Ray."),
    flush_rows: int = typer.Option(64, help="Result rows per results part: the most a killed run redoes."),
    outage_patience: float = typer.Option(
        300, help="Seconds an S3 outage is waited out (backoff, jitter) before its rows fail."
    ),
) -> None:
    """Restore every image of a manifest not yet done under OUTPUT; re-running resumes."""
    from model.checkpoints import DEFAULT_CHECKPOINT
    from pipeline.config import PipelineConfig
    from pipeline.run import RestoreJob
    from pipeline.storage import StorageOptions

    job = RestoreJob(
        manifest=manifest,
        output=output,
        model=model or str(DEFAULT_CHECKPOINT),
        pipeline=PipelineConfig(
            tile=tile,
            overlap=overlap,
            tiles_per_batch=tiles_per_batch,
            batch_size=batch_size,
            max_pixels=max_pixels,
            output_format=output_format,
        ),
        storage=StorageOptions(endpoint_url=endpoint_url, outage_patience_s=outage_patience),
        ray_address=ray_address,
        limit=limit,
        flush_rows=flush_rows,
        dashboard=dashboard,
    )
    _run_archive(job, "restored")


def _run_archive(job: Any, done: str) -> None:
    """Run an archive job (restore or stylize) with a progress bar and print its summary."""
    from pipeline.progress import progress_reporter
    from pipeline.run import restore_archive

    with progress_reporter(console) as report:
        summary = restore_archive(job, on_progress=report)
    console.print(
        f"{summary.ok:,} {done}, {summary.failed:,} failed, {summary.already_done:,} already done, "
        f"{summary.skipped:,} left (of {summary.total:,}) in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.2f} images/s)"
    )
    for reason, count in summary.failures_by_reason.items():
        console.print(f"  failed: {count:,} x {reason}")
    console.print(f"results: {summary.results_uri}")


@app.command()
@user_errors
def stylize(
    manifest: str = typer.Option(..., help="Input manifest (Parquet with a `uri` column), local or s3://."),
    output: str = typer.Option(
        ..., help="Output prefix (local folder or s3://bucket/prefix), outside the input."
    ),
    era: str = typer.Option(..., help="Era preset (patina retro eras)."),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster (ray://host:10001 or auto); default: local."
    ),
    batch_size: int = typer.Option(8, help="Images per Ray Data batch."),
    output_format: str = typer.Option("same", "--format", help="same | png | jpeg | tiff | webp"),
    max_pixels: int = typer.Option(200_000_000, help="Refuse images with more pixels (decompression bombs)."),
    limit: int | None = typer.Option(None, help="Render at most N of the remaining rows."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
    flush_rows: int = typer.Option(64, help="Result rows per results part: the most a killed run redoes."),
    outage_patience: float = typer.Option(
        300, help="Seconds an S3 outage is waited out (backoff, jitter) before its rows fail."
    ),
) -> None:
    """Render every image of a manifest as a period print of ERA under OUTPUT: the restore job's pipeline
    (resumable, never writes outside OUTPUT), with the era recorded as the model of every result row."""
    from pipeline.config import PipelineConfig
    from pipeline.run import RestoreJob
    from pipeline.storage import StorageOptions
    from pipeline.stylizer import ERA_SCHEME

    job = RestoreJob(
        manifest=manifest,
        output=output,
        model=f"{ERA_SCHEME}{era}",
        pipeline=PipelineConfig(batch_size=batch_size, max_pixels=max_pixels, output_format=output_format),
        storage=StorageOptions(endpoint_url=endpoint_url, outage_patience_s=outage_patience),
        ray_address=ray_address,
        limit=limit,
        flush_rows=flush_rows,
    )
    _run_archive(job, "stylized")


@app.command()
@user_errors
def train(
    data: str = typer.Option(..., help="Clean photos: a manifest .parquet, a folder or an s3:// prefix."),
    val: Path = typer.Option(..., help="Local folder of clean validation photos."),
    output: str = typer.Option(..., help="RUN_URI: local folder or s3://bucket/prefix for this run."),
    workers: int = typer.Option(1, help="Ray Train workers (one per GPU)."),
    gpu: bool = typer.Option(False, help="Train on GPUs (bf16 autocast)."),
    steps: int | None = typer.Option(None, help="Total optimisation steps (default: the preset's)."),
    batch_size: int | None = typer.Option(None, help="Crops per worker per step."),
    crop: int | None = typer.Option(None, help="Training crop size in pixels."),
    checkpoint_every: int | None = typer.Option(None, help="Checkpoint and validate every K steps."),
    time_budget: str | None = typer.Option(
        None, help="Budget in training wall time (90s, 100m, 2h) instead of steps; the schedule follows it."
    ),
    gan_start: float | None = typer.Option(
        None, help="Fraction of the budget for stage 1 (reconstruction) before the GAN stage; 1 = no GAN."
    ),
    lr_generator: float | None = typer.Option(None, help="Stage-1 generator AdamW peak learning rate."),
    lr_discriminator: float | None = typer.Option(None, help="Stage-2 discriminator learning rate."),
    ema_decay: float | None = typer.Option(
        None, help="EMA decay of the exported generator (short runs: lower)."
    ),
    mixture: str | None = typer.Option(
        None, help="Training degradations: blind (default) | light | medium | heavy."
    ),
    pool_size: int | None = typer.Option(None, help="Degraded training pairs kept in memory."),
    preset: str = typer.Option("small", help="Model size preset: tiny, small (default) or large (GPU)."),
    resume: bool = typer.Option(False, help="Continue the run at OUTPUT from its latest checkpoint."),
    val_limit: int = typer.Option(8, help="Validation photos scored at each checkpoint."),
    seed: int | None = typer.Option(None, help="Seed for weights and training pairs."),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster (ray://host:10001 or auto); default: local."
    ),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """Train the restoration GAN with Ray Train; the best EMA generator lands at OUTPUT/model.safetensors."""
    from model.restoration.config import DegradationConfig
    from model.restoration.config import preset as get_preset
    from pipeline.storage import StorageOptions
    from pipeline.train import TrainJob, parse_duration, train_gan

    cfg = get_preset(preset).with_train(
        steps=steps, batch_size=batch_size, crop=crop, checkpoint_every=checkpoint_every, seed=seed,
        lr_generator=lr_generator, lr_discriminator=lr_discriminator, ema_decay=ema_decay,
        time_budget_s=parse_duration(time_budget) if time_budget else None, gan_start=gan_start,
        pool_size=pool_size,
    )  # fmt: skip
    if mixture:
        cfg = cfg.replace(degradation=DegradationConfig(mixture=mixture))
    job = TrainJob(
        data=data,
        val=str(val),
        output=output,
        config=cfg,
        workers=workers,
        gpu=gpu,
        resume=resume,
        val_limit=val_limit,
        ray_address=ray_address,
        storage=StorageOptions(endpoint_url=endpoint_url),
    )
    metrics = train_gan(job)
    console.print(
        f"step {metrics.get('step')}: val PSNR {metrics.get('val_psnr', float('nan')):.2f} dB; "
        f"model: {output.rstrip('/')}/model.safetensors"
    )


@app.command()
@user_errors
def serve(
    config: Path = typer.Option(Path("deploy/schedules.toml"), help="Schedules file (TOML)."),
    register_only: bool = typer.Option(False, help="Create/update the deployments, then exit."),
) -> None:
    """Serve patina's Prefect flows on their cron schedules from this machine (PREFECT_API_URL names the
    server). Runs scheduled and UI-triggered runs until interrupted."""
    from flows.serve import load_schedules, register
    from flows.serve import serve as serve_flows

    schedules = load_schedules(config)
    for s in schedules:
        console.print(f"{s.flow}/{s.name}: cron '{s.cron}' ({s.timezone}){' paused' if s.paused else ''}")
    if register_only:
        register(schedules)
        console.print(f"registered {len(schedules)} deployments")
        return
    serve_flows(schedules)


@app.command()
@user_errors
def demo(
    output: Path = typer.Option(Path("demo-output"), help="Folder for the demo's archive and results."),
    model: str | None = typer.Option(None, help="Checkpoint to use instead of the shipped default."),
    seed: int = typer.Option(0, help="Seed for the synthetic degradations."),
) -> None:
    """Build a small degraded archive from scikit-image's sample photos, restore it with the batch pipeline
    (local Ray, local folders) and write gallery.html."""
    from pipeline.demo import run_demo

    summary, scores, description, page = run_demo(output, model, seed=seed)
    table = Table(title=f"patina demo: {description}")
    for column in ("image", "severity", "PSNR dB in -> out", "SSIM in -> out"):
        table.add_column(column)
    for s in scores:
        table.add_row(
            s.name,
            s.severity,
            f"{_db(s.psnr_degraded)} -> {_db(s.psnr_restored)}",
            f"{s.ssim_degraded:.3f} -> {s.ssim_restored:.3f}",
        )
    console.print(table)
    console.print(f"{summary.ok} restored, {summary.failed} failed; results manifest: {summary.results_uri}")
    console.print(f"Open {page} to compare before and after (sortable by defect coverage).")


def _db(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


if __name__ == "__main__":  # python -m pipeline.cli, for environments without the console script
    app()
