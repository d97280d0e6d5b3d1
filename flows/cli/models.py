"""`patina model info|evaluate|repair|gallery` and `patina train`: the restoration models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from flows.cli.base import app, console, model_app, user_errors
from pipeline.training.job import TrainJob


@model_app.command("info")
@user_errors
def model_info(preset: str = typer.Option("small", help="Model size preset: tiny, small or large.")) -> None:
    """Print parameters and GFLOPs per megapixel of the generator and discriminator."""
    from model.restoration.config import preset as get_preset
    from model.restoration.cost import describe

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


@model_app.command("repair")
@user_errors
def model_repair(
    val: Path = typer.Option(..., help="Folder of clean validation photos."),
    model: str | None = typer.Option(None, help="Checkpoint (local or s3://); default: the shipped model."),
    baseline: bool = typer.Option(True, help="Also score the classical baseline."),
    sets: str = typer.Option(
        "defects,light,medium,heavy,published,clean", help="Comma-separated validation sets."
    ),
    limit: int | None = typer.Option(None, help="Score only the first N photos (sorted by name)."),
    max_side: int | None = typer.Option(None, help="Centre-crop photos to this square side."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the table as JSON here."),
    threshold: float = typer.Option(
        0.5, help="Score the model's mask at this defect probability (the pipeline uses 0.5)."
    ),
    real_split: bool = typer.Option(
        False,
        "--real-split",
        help="VAL holds real old photos: score only its validation fifth (defects painted on real prints).",
    ),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """The detect-and-fill table on fixed copies of VAL: detection precision / recall / F1 of the model's
    defect mask (1 px tolerance), PSNR inside the true defects, PSNR and tone-invariant PSNR, for the input,
    the baseline, the model's own fill, its mask filled by OpenCV Telea, and the true mask + Telea."""
    import dataclasses
    import json

    from model.checkpoints import DEFAULT_CHECKPOINT, load_generator
    from model.restoration.scoring import repair_table
    from model.restoration.validation import build_val_set
    from pipeline.storage import Storage, StorageOptions
    from pipeline.training.real import real_split as split

    uri = model or str(DEFAULT_CHECKPOINT)
    generator, meta, model_id = load_generator(uri, Storage(StorageOptions(endpoint_url=endpoint_url)))
    chosen = tuple(name.strip() for name in sets.split(",") if name.strip())
    photos = split(val)[1] if real_split else val
    pairs = build_val_set(photos, chosen, seed=0, limit=limit, max_side=max_side)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"--threshold must lie between 0 and 1, got {threshold}")
    results = repair_table(pairs, generator, baseline=baseline, threshold=threshold)
    table = Table(title=f"{model_id} on {val}: detect and fill")
    columns = ("set", "method", "PSNR", "tone-inv PSNR", "SSIM", "inside PSNR", "P", "R", "F1", "flagged %")
    for column in columns:
        table.add_column(column, justify="left" if column in ("set", "method") else "right")

    def num(value: float | None, digits: int = 2, scale: float = 1.0) -> str:
        return "" if value is None else f"{value * scale:.{digits}f}"

    for name in chosen:
        for method, by_set in results.items():
            if name not in by_set:
                continue
            s = by_set[name]
            table.add_row(
                name,
                method,
                num(s.psnr),
                num(s.tone_invariant_psnr),
                num(s.ssim, 4),
                num(s.inside_psnr),
                num(s.precision, 3),
                num(s.recall, 3),
                num(s.f1, 3),
                num(s.flagged, 3, 100),
            )
        table.add_section()
    console.print(table)
    if json_out:
        payload = {
            "model": uri,
            "model_id": model_id,
            "step": meta.step,
            "val": str(val),
            **{m: {k: dataclasses.asdict(v) for k, v in by_set.items()} for m, by_set in results.items()},
        }
        json_out.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


@model_app.command("gallery")
@user_errors
def model_gallery(
    real: Path = typer.Option(..., help="Folder of real old photos; its fixed validation fifth is drawn."),
    output: Path = typer.Option(..., help="Folder for the rows and grid.png (not the photos' folder)."),
    model: str | None = typer.Option(None, help="Checkpoint; default: the shipped model."),
    fill: str = typer.Option("mask", help="Fill of detected defects: mask, model or telea."),
    tone: str = typer.Option("keep", help="keep, or auto: the after panel has the tone stage too."),
    limit: int = typer.Option(16, help="How many validation photos."),
    side: int = typer.Option(512, help="Panel width in pixels."),
) -> None:
    """Before | mask | after rows for real old photos (restored at full size), to judge by eye."""
    from model.checkpoints import DEFAULT_CHECKPOINT
    from pipeline.tools.real_gallery import write_real_gallery

    if output.resolve() == real.resolve():
        raise ValueError("--output must not be the photos' folder")
    paths = write_real_gallery(real, output, model or str(DEFAULT_CHECKPOINT), fill, tone, limit, side)
    console.print(f"{len(paths)} rows; grid: {output / 'grid.png'}")


@app.command()
@user_errors
def train(
    data: str = typer.Option(..., help="Clean photos: a manifest .parquet, a folder or an s3:// prefix."),
    val: Path = typer.Option(..., help="Local folder of clean validation photos."),
    output: str = typer.Option(..., help="RUN_URI: local folder or s3://bucket/prefix for this run."),
    workers: int = typer.Option(TrainJob.workers, help="Ray Train workers (one per GPU)."),
    gpu: bool = typer.Option(TrainJob.gpu, help="Train on GPUs (bf16 autocast)."),
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
        None, help="Training degradations: local (default) | blind | light | medium | heavy."
    ),
    real: str | None = typer.Option(
        None, help="Folder of real old photos: defects painted on its training split join the pairs."
    ),
    real_fraction: float | None = typer.Option(None, help="Share of pairs drawn on --real photos (0.25)."),
    pool_size: int | None = typer.Option(None, help="Degraded training pairs kept in memory."),
    preset: str = typer.Option("small", help="Model size preset: tiny, small (default) or large (GPU)."),
    family: str = typer.Option(
        "restoration", help="Model family: restoration (default) or retro (reference-guided style transfer)."
    ),
    resume: bool = typer.Option(False, help="Continue the run at OUTPUT from its latest checkpoint."),
    init: str | None = typer.Option(
        None, help="Start the generator from this checkpoint of the same network (fine-tune)."
    ),
    val_limit: int = typer.Option(TrainJob.val_limit, help="Validation photos scored at each checkpoint."),
    seed: int | None = typer.Option(None, help="Seed for weights and training pairs."),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster (ray://host:10001 or auto); default: local."
    ),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """Train a GAN family with Ray Train; the best EMA generator lands at OUTPUT/model.safetensors."""
    from pipeline.training.driver import train_gan
    from pipeline.training.job import train_job

    job = train_job(
        data,
        str(val),
        output,
        family=family,
        preset=preset,
        time_budget=time_budget,
        mixture=mixture,
        real_fraction=real_fraction,
        endpoint_url=endpoint_url,
        steps=steps,
        batch_size=batch_size,
        crop=crop,
        checkpoint_every=checkpoint_every,
        seed=seed,
        real=real,
        lr_generator=lr_generator,
        lr_discriminator=lr_discriminator,
        ema_decay=ema_decay,
        gan_start=gan_start,
        pool_size=pool_size,
        workers=workers,
        gpu=gpu,
        resume=resume,
        init=init,
        val_limit=val_limit,
        ray_address=ray_address,
    )
    metrics = train_gan(job)
    console.print(
        f"step {metrics.get('step')}: val PSNR {metrics.get('val_psnr', float('nan')):.2f} dB; "
        f"model: {output.rstrip('/')}/model.safetensors"
    )
