"""`patina tone` (a folder's fading lifted), `patina model tone` (the tone table) and `patina model
train-tone`: the global tone stage, ``--tone auto`` (docs/MODEL.md, "Tone")."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from flows.cli.base import app, console, model_app, report_folder, user_errors

ESTIMATOR_HELP = "Tone estimator (.safetensors); default: the shipped one."


@app.command()
@user_errors
def tone(
    src: Path = typer.Argument(..., help="Folder of photos (scans or restorations)."),
    dst: Path = typer.Argument(..., help="Folder for the corrected copies, <name>.png and <file>.tone.json."),
    strength: float = typer.Option(1.0, "--tone-strength", help="Undo at most this fraction (0-1)."),
    estimator: Path | None = typer.Option(None, help=ESTIMATOR_HELP),
) -> None:
    """Lift fading, yellowing and dye fade read from each whole photo, recording each correction beside it.
    What `patina restore --tone auto` does after the repair. Re-running skips images already done."""
    from model.files import DEFAULT_TONE_ESTIMATOR
    from model.tone.inference import load_estimator
    from pipeline.tools.folders import tone_folder

    if not 0 <= strength <= 1:
        raise ValueError(f"--tone-strength must lie between 0 and 1, got {strength}")
    model = load_estimator(estimator or DEFAULT_TONE_ESTIMATOR)
    report_folder(tone_folder(src, dst, model, strength), "corrected", f"into {dst}")


@model_app.command("tone")
@user_errors
def model_tone(
    val: Path = typer.Option(..., help="Folder of clean validation photos."),
    colourful: Path | None = typer.Option(
        None, help="Training folder whose held-out tenth gives the warm / single-colour clean photos."
    ),
    colourful_count: int = typer.Option(12, help="How many of those photos."),
    limit: int | None = typer.Option(None, help="Score only the first N photos of VAL (sorted by name)."),
    sets: str = typer.Option("medium,heavy,clean", help="Comma-separated validation sets."),
    strength: float = typer.Option(1.0, "--tone-strength", help="Cap on the correction (0-1)."),
    estimator: Path | None = typer.Option(None, help=ESTIMATOR_HELP),
    max_side: int | None = typer.Option(None, help="Centre-crop photos to this square side."),
) -> None:
    """The tone table: PSNR (mean and lowest) after the default repair with the tone kept, with the
    classical levels step, with --tone auto, and the oracle affine fit, per set."""
    import dataclasses

    from model.checkpoints import load_generator
    from model.files import DEFAULT_CHECKPOINT, DEFAULT_TONE_ESTIMATOR
    from model.formats import IMAGE_EXTENSIONS
    from model.restoration.validation import build_val_set
    from model.tone.evaluation import colourful_photos, is_tone_validation, tone_table
    from model.tone.inference import load_estimator
    from pipeline.storage import Storage

    generator, _, model_id = load_generator(str(DEFAULT_CHECKPOINT), Storage())
    model = load_estimator(estimator or DEFAULT_TONE_ESTIMATOR)
    chosen = tuple(name.strip() for name in sets.split(",") if name.strip())
    pairs = build_val_set(val, chosen, seed=0, limit=limit, max_side=max_side)
    if colourful is not None:
        held = sorted(
            p
            for p in colourful.iterdir()
            if p.suffix.lower() in IMAGE_EXTENSIONS and is_tone_validation(p.name)
        )
        picked = colourful_photos(held, colourful_count)
        extra = build_val_set(picked, ("clean",), seed=0, max_side=max_side)
        pairs += [dataclasses.replace(pair, severity="colourful clean") for pair in extra]
        console.print("colourful clean photos: " + ", ".join(p.name for p in picked), markup=False)
    results = tone_table(pairs, generator, model, strength)
    table = Table(title=f"{model_id} + tone on {val}")
    for column in ("set", "method", "mean PSNR", "lowest PSNR", "photos"):
        table.add_column(column, justify="left" if column in ("set", "method") else "right")
    for name in dict.fromkeys(p.severity for p in pairs):
        for method, by_set in results.items():
            if name in by_set:
                s = by_set[name]
                table.add_row(name, method, f"{s.psnr:.2f}", f"{s.lowest:.2f}", str(s.photos))
        table.add_section()
    console.print(table)


@model_app.command("train-tone")
@user_errors
def model_train_tone(
    data: list[Path] = typer.Option(..., help="Folders of clean photos (repeat); a tenth is held out."),
    output: Path = typer.Option(..., help="Where to write the estimator (.safetensors)."),
    copies: int = typer.Option(4, help="Degraded copies per photo."),
    steps: int = typer.Option(3000, help="Optimisation steps."),
    seed: int = typer.Option(0, help="Seed for the copies and the weights."),
    hidden: int = typer.Option(512, help="Width of the estimator's MLP."),
    conv: int = typer.Option(0, help="Width of a CNN over the thumbnail beside the statistics (0: none)."),
) -> None:
    """Train the tone estimator on thumbnails of the engine's ageing of clean photos (minutes on a CPU)."""
    from model.formats import IMAGE_EXTENSIONS
    from model.tone.evaluation import is_tone_validation
    from model.tone.inference import save_estimator
    from model.tone.training import tone_pairs, train_estimator

    photos = sorted(
        p
        for folder in data
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not is_tone_validation(p.name)
    )
    if not photos:
        raise ValueError("no training photos in " + ", ".join(map(str, data)))
    console.print(f"{len(photos):,} photos x {copies} copies", markup=False)
    estimator = train_estimator(
        tone_pairs(photos, copies, seed), steps=steps, hidden=hidden, conv=conv, seed=seed
    )
    save_estimator(
        estimator, output, photos=len(photos), copies=copies, steps=steps, seed=seed, hidden=hidden, conv=conv
    )
    console.print(f"wrote {output}", markup=False)
