"""`patina degrade|baseline|evaluate`: in-process tools on local folders."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from flows.cli.base import app, console, db, report_folder, user_errors


@app.command()
@user_errors
def degrade(
    src: Path = typer.Argument(..., help="Folder of clean photos."),
    dst: Path = typer.Argument(..., help="Folder for degraded copies, clean targets and defect masks."),
    preset: str = typer.Option("medium", "--preset", help="Severity: light, medium or heavy."),
    seed: int = typer.Option(0, help="Same seed, same bytes."),
) -> None:
    """Write synthetic old-photo versions of clean photos: <name>.png, <name>.clean.png, <name>.mask.png."""
    from pipeline.tools.folders import degrade_folder

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
    from pipeline.tools.folders import baseline_folder

    report_folder(baseline_folder(src, dst), "restored", f"into {dst}")


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
    from pipeline.tools.folders import evaluate_folders

    scores = evaluate_folders(restored, clean, pred_masks, true_masks)
    with_iou = scores[0].mask_iou is not None
    table = Table(title=f"{restored} vs {clean}")
    for column in ("image", "PSNR dB", "SSIM", *(["mask IoU"] if with_iou else [])):
        table.add_column(column, justify="left" if column == "image" else "right")
    for s in scores:
        table.add_row(s.name, db(s.psnr), f"{s.ssim:.4f}", *([f"{s.mask_iou:.3f}"] if with_iou else []))
    finite = [s.psnr for s in scores if math.isfinite(s.psnr)]
    mean_iou = [f"{sum(s.mask_iou for s in scores) / len(scores):.3f}"] if with_iou else []
    table.add_section()
    table.add_row(
        f"mean of {len(scores)}",
        db(sum(finite) / len(finite) if finite else math.inf),
        f"{sum(s.ssim for s in scores) / len(scores):.4f}",
        *mean_iou,
    )
    console.print(table)
