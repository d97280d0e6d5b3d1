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
def model_info(preset: str = typer.Option("base", help="Model size preset: tiny or base.")) -> None:
    """Print parameters and GFLOPs per megapixel of the generator and discriminator."""
    from model.config import preset as get_preset
    from model.info import describe

    table = Table(title=f"patina model preset '{preset}'")
    for column in ("network", "parameters", "GFLOPs / megapixel"):
        table.add_column(column, justify="right" if column != "network" else "left")
    for net in describe(get_preset(preset)):
        table.add_row(net.name, f"{net.parameters:,}", f"{net.gflops_per_megapixel:,.1f}")
    console.print(table)


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


@app.command()
@user_errors
def demo(
    output: Path = typer.Option(Path("demo-output"), help="Folder for the demo's results."),
    seed: int = typer.Option(0, help="Seed for the synthetic degradations."),
) -> None:
    """Degrade sample photos bundled with scikit-image, restore them and write a before/after page."""
    from pipeline.demo import run_demo

    rows, model_name = run_demo(output, seed)
    table = Table(title=f"patina demo - {model_name}")
    for column in ("image", "severity", "PSNR in -> out", "SSIM in -> out", "mask IoU"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.name,
            r.severity,
            f"{_db(r.psnr_degraded)} -> {_db(r.psnr_restored)}",
            f"{r.ssim_degraded:.3f} -> {r.ssim_restored:.3f}",
            f"{r.mask_iou:.3f}",
        )
    console.print(table)
    console.print(f"Open {(output / 'index.html').resolve()} to compare degraded, restored and clean.")


def _db(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"
