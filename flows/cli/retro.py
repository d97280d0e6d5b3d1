"""`patina retro eras|render|gallery|estimate|evaluate`: period looks (docs/RETRO.md)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from flows.cli.base import console, report_folder, retro_app, user_errors


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
    wear: float | None = typer.Option(
        None, help="Handling wear 0-1 (0: a clean print of the period); default: the era's own light amount."
    ),
) -> None:
    """Render a folder as period prints with the parametric renderer. Re-running skips images already done."""
    import dataclasses

    from model.retro.eras import era
    from model.retro.params import RetroParams
    from pipeline.tools.folders import stylize_folder

    if (era_name is None) == (params is None):
        raise ValueError("give exactly one of --era NAME or --params FILE.json")
    look = era(era_name) if era_name else RetroParams.from_json(params.read_text())
    if wear is not None:  # RetroParams refuses a wear outside [0, 1] in one line
        look = dataclasses.replace(look, wear=wear)
    report_folder(stylize_folder(src, dst, look, seed), "rendered", f"as {era_name or params} into {dst}")


@retro_app.command("gallery")
@user_errors
def retro_gallery(
    src: Path = typer.Argument(..., help="Folder of photos."),
    dst: Path = typer.Argument(..., help="Folder for retro.html and its thumbnails."),
    eras: str | None = typer.Option(None, help="Comma-separated eras; default: all."),
    side: int = typer.Option(384, help="Long side of each rendered thumbnail, px."),
    seed: int = typer.Option(0, help="Seed of grain and wear."),
    reference: str | None = typer.Option(None, help="An old photo: adds a column in its look (retro model)."),
    model: str | None = typer.Option(
        None, help="Retro checkpoint for --reference (local or s3://); default: the shipped one."
    ),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """An HTML grid: one row per photo, one column per era, and one in the look of --reference."""
    from model.retro.eras import ERAS
    from pipeline.tools.retro_gallery import write_retro_gallery

    names = [e.strip() for e in eras.split(",")] if eras else list(ERAS)
    page = write_retro_gallery(src, dst, names, side, seed, reference, model, endpoint_url)
    console.print(f"wrote {page}")


@retro_app.command("estimate")
@user_errors
def retro_estimate(
    old_photo: str = typer.Argument(..., help="A real old photo (local path or s3:// URI)."),
    model: str | None = typer.Option(None, help="Retro checkpoint; default: the shipped one."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """Print the renderer parameters the retro model reads from OLD_PHOTO, as JSON (``patina retro render
    --params`` takes it): sensitivity class, curves, tone, fading, grain, blur, tint, vignetting."""
    from pipeline.batch.stylizer import estimate_look, load_retro
    from pipeline.storage import Storage, StorageOptions

    storage = Storage(StorageOptions(endpoint_url=endpoint_url))
    generator, _ = load_retro(model, storage)
    style, _ = estimate_look(generator, old_photo, storage)
    print(json.dumps(style.to_params().to_dict(), indent=2, sort_keys=True))


@retro_app.command("evaluate")
@user_errors
def retro_evaluate(
    val: Path = typer.Option(..., help="Folder of photos the looks are scored on."),
    limit: int | None = typer.Option(None, help="Score only the first N photos (sorted by name)."),
    max_side: int = typer.Option(384, help="Scale photos to this long side first."),
    seed: int = typer.Option(0, help="Seed of the sampled looks."),
    model: str | None = typer.Option(None, help="Retro checkpoint to score; default: the shipped one."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write every number to this JSON file."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """Score reference-guided transfer where the truth is known (the look of photo A rendered on photo B)
    for the retro model and the classical baselines, the model's parameter recovery, and how much of each
    photo's luminance structure every era keeps."""
    import torch

    from model.restoration.inference import default_autocast
    from model.retro.baselines import BASELINES
    from model.retro.evaluation import (
        content_preservation,
        load_photos,
        model_transfer,
        parameter_recovery,
        score_transfer,
        transfer_set,
    )
    from pipeline.batch.stylizer import load_retro
    from pipeline.storage import Storage, StorageOptions

    generator, model_id = load_retro(model, Storage(StorageOptions(endpoint_url=endpoint_url)))
    photos = load_photos(val, limit, max_side)
    pairs = transfer_set(photos, seed)
    report: dict = {"model": model_id, "photos": len(photos), "transfer": {}}
    table = Table(title=f"look transfer on {len(pairs)} photos of {val} (target: B rendered with A's look)")
    for column in ("method", "PSNR dB", "worst PSNR dB", "SSIM"):
        table.add_column(column, justify="left" if column == "method" else "right")
    methods = {
        "untouched photo": lambda photo, reference: photo,
        **BASELINES,
        f"retro model ({model_id})": model_transfer(generator, default_autocast(torch.device("cpu"))),
    }
    for name, transfer in methods.items():
        s = report["transfer"][name] = score_transfer(pairs, transfer)
        table.add_row(name, f"{s['psnr']:.2f}", f"{s['psnr_min']:.2f}", f"{s['ssim']:.4f}")
    console.print(table)
    recovery = report["recovery"] = parameter_recovery(generator, pairs)
    found = Table(title=f"parameters read from the {len(pairs)} references (error on each range's 0-1 scale)")
    found.add_column("parameter")
    found.add_column("mean abs error", justify="right")
    found.add_row("sensitivity class (accuracy)", f"{recovery['sensitivity_accuracy']:.1%}")
    for key, value in recovery.items():
        if key.startswith("error:"):
            found.add_row(key[len("error:") :], f"{value:.3f}")
    console.print(found)
    kept = Table(title="content kept: SSIM of the print's luminance against the photo's")
    kept.add_column("era")
    kept.add_column("SSIM", justify="right")
    report["content_kept"] = content_preservation(photos, seed)
    for name, value in report["content_kept"].items():
        kept.add_row(name, f"{value:.3f}")
    console.print(kept)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
