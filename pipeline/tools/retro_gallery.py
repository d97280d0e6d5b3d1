"""A static HTML grid of period looks: one row per photo, the photo then one column per era, rendered at a
thumbnail size (the renderer's sizes are physical, so a thumbnail shows what the full print would), and with
a reference, a last column in the look of that old photo (the retro model, its thumbnail in the header)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from PIL import Image

from model.degradation.engine import image_to_tensor, tensor_to_image
from model.retro.eras import era
from model.retro.render import render
from pipeline.manifest import one_line
from pipeline.tools.folders import image_seed, list_images, refuse_same_folder
from pipeline.tools.gallery import PAGE_CSS, THUMBS_DIR, preview

PAGE_FILE = "retro.html"


def write_retro_gallery(
    src: Path,
    dst: Path,
    eras: Sequence[str],
    side: int = 384,
    seed: int = 0,
    reference: str | None = None,
    model: str | None = None,
    endpoint_url: str | None = None,
) -> Path:
    """Render every photo of ``src`` (its long side scaled to ``side``) in each era, and in the look of the
    local photo ``reference`` if given (read by the retro ``model``: a local or s3:// checkpoint, S3 at
    ``endpoint_url``; default the shipped one), into ``dst/thumbs/``; write ``dst/retro.html``.
    An unreadable photo gets a row saying why; ``dst == src`` is refused."""
    looks = {name: era(name) for name in eras}  # a bad era name fails before any work
    refuse_same_folder(src, dst)
    (dst / THUMBS_DIR).mkdir(parents=True, exist_ok=True)
    transfer = _reference_look(reference, model, endpoint_url, dst) if reference else None
    rows = []
    for path in list_images(src):
        try:
            with Image.open(path) as image:
                photo = preview(image, side).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            reason = html.escape(f"{path.name}: {one_line(exc)}")
            columns = len(looks) + 1 + (transfer is not None)
            rows.append(f'<tr><td colspan="{columns}" class="err">{reason}</td></tr>')
            continue
        cells = [_save(photo, dst, f"{path.name}.jpg")]
        look_seed = int(image_seed(seed, path.name).integers(2**31))
        for name, params in looks.items():
            printed = tensor_to_image(render(image_to_tensor(photo), params, look_seed))
            cells.append(_save(printed, dst, f"{path.name}.{name}.jpg"))
        if transfer is not None:
            cells.append(_save(transfer[1](photo), dst, f"{path.name}.reference.jpg"))
        rows.append("<tr>" + "".join(f'<td class="img">{cell}</td>' for cell in cells) + "</tr>")
    headers = "".join(f"<th>{html.escape(h)}</th>" for h in ["photo", *looks])
    if transfer is not None:
        headers += f"<th>look of {html.escape(Path(str(reference)).name)}<br>{transfer[0]}</th>"
    title = "patina period looks"
    page = dst / PAGE_FILE
    page.write_text(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{PAGE_CSS}</style></head>\n<body><h1>{title}</h1>\n<table><thead><tr>{headers}</tr></thead>\n"
        f"<tbody>\n{chr(10).join(rows)}\n</tbody></table></body></html>\n",
        encoding="utf-8",
    )
    return page


def _reference_look(reference: str, model: str | None, endpoint_url: str | None, dst: Path):
    """(the reference's thumbnail as an <img>, photo -> photo in its look) by the retro model."""
    from model.retro.generator import stylize
    from pipeline.batch.stylizer import estimate_look, load_retro
    from pipeline.storage import Storage, StorageOptions

    storage = Storage(StorageOptions(endpoint_url=endpoint_url))
    generator, _ = load_retro(model, storage)
    style, _ = estimate_look(generator, reference, storage)
    with Image.open(reference) as image:  # a local file: the gallery is a folder tool
        shown = preview(image, 192)

    def look(photo: Image.Image) -> Image.Image:
        x = image_to_tensor(photo)[None] * 2 - 1
        return tensor_to_image(((stylize(generator, x, style)[0] + 1) / 2).clamp(0, 1))

    return _save(shown, dst, "reference.jpg"), look


def _save(image: Image.Image, dst: Path, name: str) -> str:
    image.save(dst / THUMBS_DIR / name, quality=90)
    src = html.escape(quote(f"{THUMBS_DIR}/{name}"))  # names with # ? % or spaces are still links
    return f'<img src="{src}" width="{image.width}" height="{image.height}" alt="{html.escape(name)}">'
