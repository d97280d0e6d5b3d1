"""A static HTML page for eyeballing a restoration run: before/after thumbnails per image, sortable by defect
coverage, with a summary of ok/failed/skipped counts on top.

The page, its JPEG thumbnails and its inline script work offline from file://, so a local run (``make demo``)
only needs a browser. Thumbnails are made from local input and output files; s3:// uris are shown as text,
since downloading an archive to preview it is the pipeline's job, not the gallery's.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
from PIL import Image, ImageOps

from pipeline.batch.outputs import mask_uri
from pipeline.manifest import RESULTS_FILE
from pipeline.storage import StorageError, parse_uri

PAGE_FILE = "gallery.html"
THUMBS_DIR = "thumbs"
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La")
# Local path -> (thumbnail src relative to the page, width, height), or None when it could not be read.
Thumbs = dict[str, tuple[str, int, int] | None]

PAGE_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 6px}
.summary{margin:0 0 16px;color:#555}.summary b{color:#222}
table{border-collapse:collapse;background:#fff;box-shadow:0 1px 3px #0002}
th,td{padding:6px 10px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{background:#f0f0f0;position:sticky;top:0;white-space:nowrap}
th[data-type]{cursor:pointer;user-select:none}th[data-type]:hover{background:#e4e4e4}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td.img{text-align:center}td.img img{display:block;border:1px solid #ddd;background:#eee}
.none{display:inline-block;padding:20px 8px;color:#999;font-style:italic}
.uri,.err{font:12px ui-monospace,monospace;word-break:break-all;max-width:320px;display:inline-block}
.err{color:#a40000;white-space:pre-wrap}
.status{padding:1px 6px;border-radius:8px;font-size:12px;background:#eee}
.ok{background:#dff3df;color:#1a5e1a}.failed{background:#fbdcdc;color:#8a1010}.skipped{background:#fff1c7}
"""

# Click a header to sort by it (again to reverse); numbers start descending, text ascending; blanks sort last.
_JS = """
for (const th of document.querySelectorAll("th[data-type]")) {
  th.addEventListener("click", () => {
    const num = th.dataset.type === "num", cur = th.getAttribute("aria-sort");
    const desc = cur ? cur === "ascending" : num;
    for (const other of th.parentNode.children) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", desc ? "descending" : "ascending");
    const body = th.closest("table").tBodies[0], key = (tr) => tr.cells[th.cellIndex].dataset.sort;
    const rows = [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      const c = num ? x - y : x.localeCompare(y, undefined, {numeric: true});
      return desc ? -c : c;
    });
    body.append(...rows);
  });
}
"""


def write_gallery(
    results: pa.Table, out_dir: Path, title: str = "patina restorations", thumb_px: int = 256
) -> Path:
    """Write ``out_dir/gallery.html`` (and JPEG thumbnails under ``out_dir/thumbs/``) for a results table.

    One row per result, defect coverage descending: input and restored output (and the clean original when a
    ``clean_uri`` column is present) as thumbnails linking to the full-size files, with id, status, coverage,
    size, elapsed time, ``severity`` when present, and the error. Unreadable images get a placeholder, never
    an exception. Returns the page's path."""
    out_dir = Path(os.path.abspath(out_dir))
    (out_dir / THUMBS_DIR).mkdir(parents=True, exist_ok=True)
    columns = set(results.column_names)
    rows = sorted(results.to_pylist(), key=_default_order)
    for row in rows:  # a run with --masks wrote each defect mask beside its output
        found = (path := _local_path(row.get("output_uri"))) and os.path.exists(mask_uri(path))
        row["mask_uri"] = mask_uri(path) if found else None
    masks = any(row["mask_uri"] for row in rows)
    roles = ["uri"] + (["mask_uri"] if masks else []) + ["output_uri"]
    roles += ["clean_uri"] if "clean_uri" in columns else []
    # Each distinct local file is thumbnailed once; Pillow releases the GIL while decoding, so threads help.
    paths = sorted({p for row in rows for role in roles if (p := _local_path(row.get(role)))})
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        thumbs = dict(
            zip(paths, pool.map(partial(_thumbnail, out_dir=out_dir, px=thumb_px), paths), strict=True)
        )

    headers = [
        '<th data-type="text">id</th>',
        '<th data-type="text">status</th>',
        '<th data-type="num" aria-sort="descending">defects</th>',
        "<th>size</th>",
        '<th data-type="num">ms</th>',
    ]
    headers += ['<th data-type="text">severity</th>'] if "severity" in columns else []
    headers += ["<th>before</th>"] + (["<th>mask</th>"] if masks else []) + ["<th>after</th>"]
    headers += ["<th>clean</th>"] if "clean_uri" in columns else []
    body = "\n".join(_row(row, roles, "severity" in columns, thumbs, out_dir) for row in rows)
    page = out_dir / PAGE_FILE
    page.write_text(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{PAGE_CSS}</style></head>\n<body><h1>{html.escape(title)}</h1>\n{_summary(rows, out_dir)}\n"
        f"<table><thead><tr>{''.join(headers)}<th>error</th></tr></thead>\n<tbody>\n{body}\n</tbody></table>"
        f"\n<script>{_JS}</script></body></html>\n",
        encoding="utf-8",
    )
    return page


def _default_order(row: dict[str, Any]) -> tuple[bool, float, str]:
    """Defect coverage descending (rows without one last), then id: the worst-damaged images first."""
    coverage = _number(row.get("defect_coverage"))
    return coverage is None, -(coverage or 0.0), str(row.get("id"))


def _number(value: Any) -> float | None:
    """A float, or None for nulls and NaN (which would make sorting order meaningless)."""
    if value is None or value != value:
        return None
    return float(value)


def _summary(rows: list[dict[str, Any]], out_dir: Path) -> str:
    counts = Counter(str(row.get("status")) for row in rows)
    parts = [f"<b>{len(rows)}</b> images"] + [
        f'<span class="status {html.escape(s)}">{counts.pop(s, 0)} {html.escape(s)}</span>'
        for s in ("ok", "failed", "skipped")
    ]
    parts += [f"{n} {html.escape(s)}" for s, n in sorted(counts.items())]  # statuses nobody expected
    models = sorted({str(m) for row in rows if (m := row.get("model_id"))})
    parts.append("model " + (", ".join(f"<b>{html.escape(m)}</b>" for m in models) or "unknown"))
    if (out_dir / RESULTS_FILE).exists():
        parts.append(f'<a href="{RESULTS_FILE}">{RESULTS_FILE}</a>')
    return f'<p class="summary">{" &middot; ".join(parts)}</p>'


def _row(row: dict[str, Any], roles: list[str], severity: bool, thumbs: Thumbs, out_dir: Path) -> str:
    coverage, elapsed = _number(row.get("defect_coverage")), _number(row.get("elapsed_ms"))
    status = str(row.get("status"))
    width, height = row.get("width"), row.get("height")
    cells = [
        _cell(str(row.get("id")), str(row.get("id"))),
        _cell(status, f'<span class="status {html.escape(status)}">{html.escape(status)}</span>', raw=True),
        _cell(
            "" if coverage is None else f"{coverage:.6f}",
            "" if coverage is None else f"{coverage:.1%}",
            "num",
        ),
        _cell("", f"{width}\u00d7{height}" if width and height else "", "num"),
        _cell("" if elapsed is None else repr(elapsed), "" if elapsed is None else f"{elapsed:,.0f}", "num"),
    ]
    if severity:
        cells.append(_cell(str(row.get("severity") or ""), str(row.get("severity") or "")))
    cells += [_image(row.get(role), role, thumbs, out_dir) for role in roles]
    error = row.get("error")
    cells.append(f'<td><span class="err">{html.escape(str(error))}</span></td>' if error else "<td></td>")
    return "<tr>" + "".join(cells) + "</tr>"


def _cell(sort_key: str, text: str, cls: str = "", raw: bool = False) -> str:
    attrs = f' class="{cls}"' if cls else ""
    return f'<td{attrs} data-sort="{html.escape(sort_key)}">{text if raw else html.escape(text)}</td>'


def _image(uri: str | None, role: str, thumbs: Thumbs, out_dir: Path) -> str:
    if not uri:
        return '<td class="img"><span class="none">&mdash;</span></td>'
    path = _local_path(uri)
    if path is None:  # s3:// (or a uri we cannot parse): nothing to show but the text
        return f'<td class="img"><span class="uri">{html.escape(uri)}</span></td>'
    thumb = thumbs.get(path)
    inner = (
        f'<img src="{thumb[0]}" width="{thumb[1]}" height="{thumb[2]}" alt="{role}" loading="lazy">'
        if thumb
        else '<span class="none">no preview</span>'
    )
    href = html.escape(_href(path, out_dir))
    return f'<td class="img"><a href="{href}" title="{html.escape(uri)}">{inner}</a></td>'


def _local_path(uri: Any) -> str | None:
    """The absolute local path a uri names; None for s3://, nulls and malformed uris."""
    if not isinstance(uri, str) or not uri:
        return None
    try:
        parsed = parse_uri(uri)
    except StorageError:
        return None
    return os.path.abspath(parsed.key) if parsed.scheme == "file" else None


def _href(path: str, out_dir: Path) -> str:
    """A link from the page to ``path``: relative, so the folder can be moved or served as a whole."""
    try:
        rel = os.path.relpath(path, out_dir)
    except ValueError:  # on Windows a path on another drive has no relative form
        return Path(path).as_uri()
    return quote(rel.replace(os.sep, "/"))  # '#', '?', '%' and spaces in file names must not bend the URL


def _thumbnail(path: str, out_dir: Path, px: int) -> tuple[str, int, int] | None:
    """Write a JPEG thumbnail of ``path``; return (src relative to the page, width, height), or None."""
    name = hashlib.sha256(path.encode()).hexdigest()[:20] + ".jpg"
    # Whatever goes wrong (garbage, truncated, missing, bomb-sized) gives a placeholder, not a broken page.
    try:
        with Image.open(path) as img:
            thumb = preview(img, px)
        thumb.save(out_dir / THUMBS_DIR / name, "JPEG", quality=85)
    except Exception:
        return None
    return f"{THUMBS_DIR}/{name}", thumb.width, thumb.height


def preview(img: Image.Image, px: int) -> Image.Image:
    """An opened image of any mode, upright and shrunk to fit ``px`` x ``px``, as 8-bit L or RGB a browser
    shows: 16-bit scans scaled down to 8 bits (Pillow's own conversion clips them to white), transparency on
    white. The one thumbnail maker of the galleries and the flows' reports."""
    img.draft(None, (px, px))  # JPEG decodes straight at 1/2..1/8 scale: much cheaper for big scans
    thumb = ImageOps.exif_transpose(img)
    # Shrink before converting, so a 16-bit archive scan never exists as a full-size float array. Pillow
    # cannot resize I;16 (I keeps all 16 bits) and resizes palette and 1-bit images nearest-neighbour.
    sixteen = thumb.mode.startswith("I;16")
    if sixteen or thumb.mode in ("P", "PA", "1"):
        thumb = thumb.convert("I" if sixteen else "L" if thumb.mode == "1" else "RGBA")
    thumb.thumbnail((px, px))
    return _displayable(thumb, 65535.0 if sixteen else None)


def _displayable(img: Image.Image, top: float | None) -> Image.Image:
    """An 8-bit L or RGB image a browser can show; ``top`` is the white level of I/F data, if known."""
    if img.mode in ("I", "F"):
        # Pillow's own conversion clips at 255 instead of scaling; without a known bit depth, guess the range
        # from the values (0-1 floats, 8 bits, 16 bits, else the maximum).
        data = np.nan_to_num(np.asarray(img, dtype=np.float32))
        peak = float(data.max(initial=0.0))
        top = top or next(t for t in (1.0, 255.0, 65535.0, peak) if peak <= t)
        return Image.fromarray((np.clip(data, 0, top) / top * 255).round().astype(np.uint8))
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")  # transparent areas on white, as a viewer would show them
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
    return img if img.mode in ("L", "RGB") else img.convert("RGB")
