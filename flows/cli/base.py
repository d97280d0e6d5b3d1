"""The `patina` command's Typer apps, console and error handling, shared by the command modules.

Errors a user can cause end as one line on stderr and exit code 2, never a stack trace.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console

from model.checkpoints import CheckpointError
from pipeline.storage import StorageError, redact

app = typer.Typer(
    help="patina: restore scanned old photographs with a GAN, and give modern photos a period look, from one "
    "folder to archives of millions.",
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
console = Console(markup=False)  # paths and row errors are text: "[/x]" in a name is not markup

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
            print(f"patina: error: {redact(str(exc))}", file=sys.stderr)
            raise typer.Exit(2) from None

    return wrapper


def db(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:.2f}"


def report_folder(outcomes, verb: str, where: str) -> None:
    """Print a folder tool's failures as they come and its counts at the end; exit 1 if any image failed."""
    counts = {"ok": 0, "skipped": 0, "failed": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
        if outcome.error:
            console.print(f"  failed: {outcome.error}", markup=False, highlight=False)
    console.print(
        f"{verb} {counts['ok']} images {where} "
        f"({counts['skipped']} already there, {counts['failed']} failed)",
        soft_wrap=True,
    )
    if counts["failed"]:
        raise typer.Exit(1)
