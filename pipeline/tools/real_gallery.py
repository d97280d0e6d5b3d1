"""Before / mask / after on real old photos: the check a person makes by eye that cracks and scratches are
gone, faces intact and nothing invented, which no synthetic number can make.

Real photos come with no clean original, so this is a picture, not a score. ``real_split`` fixes which of a
folder's photos are validation (a fifth, by a hash of the file name, so adding photos never moves one):
training that uses real photos as a domain must take only the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from model.tone.physics import ToneCorrection
from pipeline.batch.config import PipelineConfig
from pipeline.batch.restorer import Restorer
from pipeline.training.real import real_split


def write_real_gallery(
    folder: Path,
    out: Path,
    model: str,
    fill: str = "mask",
    tone: str = "keep",
    limit: int = 16,
    side: int = 512,
    max_pixels: int = 4_000_000,
) -> list[Path]:
    """Restore the first ``limit`` validation photos of ``folder`` at full size (larger than ``max_pixels``:
    scaled down to it first) and write one row per photo, before | mask | after, each panel ``side`` px
    wide, as ``out/NN-name.png`` and all rows as ``out/grid.png``. With ``tone`` "auto" the after panel has
    the tone stage too, and the caption its fade and strength. Returns the rows' paths."""
    _, val = real_split(folder)
    if not val:
        raise ValueError(f"{folder}: no validation photos")
    out.mkdir(parents=True, exist_ok=True)
    restorer = Restorer(model, pipeline=PipelineConfig(fill=fill, tone=tone), device="cpu")
    rows, paths = [], []
    for index, path in enumerate(val[:limit]):
        with Image.open(path) as image:
            photo = ImageOps.exif_transpose(image).convert("RGB")
        if photo.width * photo.height > max_pixels:
            factor = (max_pixels / (photo.width * photo.height)) ** 0.5
            photo = photo.resize((round(photo.width * factor), round(photo.height * factor)), Image.LANCZOS)
        pixels = np.asarray(photo)
        restored, coverage, mask, record = restorer.restore_toned(pixels)
        panels = [
            photo,
            Image.fromarray(mask.astype(np.uint8) * 255).convert("RGB"),
            Image.fromarray(restored),
        ]
        caption = f"{path.name}  {photo.width}x{photo.height}  defects {coverage:.2%}"
        if record:
            correction = ToneCorrection.from_json(record)
            caption += f"  tone: fade {correction.fade:.2f}, strength {correction.strength:.2f}"
        row = _row(panels, side, caption)
        paths.append(out / f"{index:02d}-{path.stem}.png")
        row.save(paths[-1])
        rows.append(row)
    grid = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    top = 0
    for row in rows:
        grid.paste(row, (0, top))
        top += row.height
    grid.save(out / "grid.png")
    return paths


def _row(panels: list[Image.Image], side: int, caption: str) -> Image.Image:
    height = round(side * panels[0].height / panels[0].width)
    row = Image.new("RGB", (side * len(panels), height + 18), "white")
    for i, panel in enumerate(panels):
        row.paste(panel.resize((side, height), Image.LANCZOS), (i * side, 18))
    ImageDraw.Draw(row).text((4, 3), caption, fill="black")
    return row
