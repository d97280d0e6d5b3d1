"""The results gallery: thumbnails of odd image modes, working links, default order, escaping, bad files."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.manifest import RESULT_SCHEMA
from pipeline.tools.gallery import write_gallery

EVIL_ERROR = "<script>alert('x')</script> cannot identify image file"


def save(path: Path, img: Image.Image, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **params)
    return path


@pytest.fixture
def run(tmp_path) -> tuple[Path, dict[str, dict]]:
    """A run folder with hand-made results over real files in every awkward mode; returns (out_dir, rows)."""
    src, out = tmp_path / "in", tmp_path / "restored"
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees for display, so the 64x32 scan shows up portrait
    gray16 = Image.fromarray(np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1)))
    rgba = Image.new("RGBA", (40, 40), (200, 30, 30, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 20, 40))  # left half transparent: must come out white, not black
    files = {
        "photo": (save(src / "photo.jpg", rgb, exif=exif.tobytes()), rgb),
        "gray16": (save(src / "scan #2 old.png", gray16), gray16),  # '#' and a space must survive the link
        "rgba": (save(src / "logo.png", rgba), rgba),
        "cmyk": (save(src / "print.jpg", rgb.convert("CMYK")), rgb),
    }
    (src / "broken.jpg").write_bytes(b"this is not an image at all")
    rows = {}
    for i, (name, (path, img)) in enumerate(files.items()):
        restored = save(out / f"{name}.png", img)
        clean = save(tmp_path / "clean" / f"{name}.png", rgb)
        rows[name] = {
            "id": name,
            "uri": path.as_uri() if name == "cmyk" else str(path),  # file:// uris work as well as paths
            "output_uri": str(restored),
            "status": "ok",
            "width": 64,
            "height": 32,
            "model_id": "patina-gan-v1",
            "elapsed_ms": 100.0 + i,
            "defect_coverage": {"photo": 0.30, "gray16": 0.05, "rgba": 0.12, "cmyk": 0.20}[name],
            "severity": "heavy",
            "clean_uri": str(clean),
        }
    rows["broken"] = {"id": "broken", "uri": str(src / "broken.jpg"), "status": "failed", "error": EVIL_ERROR}
    rows["remote"] = {"id": "remote", "uri": "s3://archive-bucket/box 7/a.tif", "status": "skipped"}
    columns = {name: [row.get(name) for row in rows.values()] for name in RESULT_SCHEMA.names}
    table = pa.table(columns, schema=RESULT_SCHEMA)
    table = table.append_column("severity", pa.array([r.get("severity") for r in rows.values()]))
    table = table.append_column("clean_uri", pa.array([r.get("clean_uri") for r in rows.values()]))
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    pq.write_table(table, out_dir / "results.parquet")
    return out_dir, rows


def page_rows(page: str) -> dict[str, str]:
    """id -> that row's HTML, in page order (the id is the first cell's sort key)."""
    body = page.split("<tbody>")[1]
    return {re.search(r'data-sort="([^"]*)"', tr).group(1): tr for tr in re.findall(r"<tr>.*?</tr>", body)}


def test_gallery_shows_every_result_with_working_links(run):
    out_dir, rows = run
    page_path = write_gallery(pq.read_table(out_dir / "results.parquet"), out_dir)
    assert page_path == out_dir / "gallery.html"
    page = page_path.read_text()
    shown = page_rows(page)
    # Worst damage first; rows without a coverage (failed, skipped) last.
    assert list(shown) == ["photo", "cmyk", "rgba", "gray16", "broken", "remote"]
    assert "30.0%" in shown["photo"] and "heavy" in shown["photo"]
    assert "4 ok" in page and "1 failed" in page and "1 skipped" in page
    assert "patina-gan-v1" in page and 'href="results.parquet"' in page

    for name in ("photo", "gray16", "rgba", "cmyk"):
        srcs = re.findall(r'<img src="([^"]+)"', shown[name])
        raw_hrefs = re.findall(r'<a href="([^"]+)"', shown[name])
        assert not any(c in h for h in raw_hrefs for c in " #")  # percent-encoded, or '#' would cut the URL
        hrefs = [unquote(h) for h in raw_hrefs]
        assert len(srcs) == 3  # before, after, clean
        for src in srcs:
            with Image.open(out_dir / src) as thumb:
                thumb.load()
                assert thumb.format == "JPEG" and max(thumb.size) <= 256
        # Relative links that land on the real files: before, after, clean original.
        assert not any(h.startswith(("/", "file:")) for h in hrefs)
        targets = [(out_dir / h).resolve() for h in hrefs]
        assert targets[0].name == Path(rows[name]["uri"].removeprefix("file://")).name
        assert targets[1:] == [
            Path(rows[name]["output_uri"]).resolve(),
            Path(rows[name]["clean_uri"]).resolve(),
        ]
        assert all(t.is_file() for t in targets)

    def before(name: str) -> Image.Image:
        return Image.open(out_dir / re.search(r'<img src="([^"]+)"', shown[name]).group(1))

    assert before("photo").height > before("photo").width  # EXIF orientation applied
    gray = np.asarray(before("gray16").convert("L"), dtype=np.float32)
    assert gray[:, :4].mean() < 20 and gray[:, -4:].mean() > 235  # 16 bits scaled to 8, not clipped at 255
    assert np.asarray(before("rgba").convert("RGB"))[20, 2].min() > 240  # transparency shown on white

    # The failed row: garbage input gets a placeholder (still linked), and its error is escaped text.
    assert "<img" not in shown["broken"] and "no preview" in shown["broken"]
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    # s3:// is shown as text, never fetched.
    assert "s3://archive-bucket/box 7/a.tif" in shown["remote"] and "<img" not in shown["remote"]


def test_gallery_without_optional_columns(tmp_path):
    """Bare RESULT_SCHEMA rows (no severity, no clean_uri, missing files) still make a page."""
    table = pa.Table.from_pylist(
        [{"id": "a&b", "uri": str(tmp_path / "gone.jpg"), "status": "ok", "defect_coverage": 0.5}],
        schema=RESULT_SCHEMA,
    )
    page = write_gallery(table, tmp_path / "g", title="<run>").read_text()
    assert "<title>&lt;run&gt;</title>" in page and "a&amp;b" in page
    assert "<th>clean</th>" not in page and "severity" not in page and "results.parquet" not in page


def test_the_flow_report_previews_a_16_bit_scan_at_its_tones(tmp_path):
    # The report's thumbnails and the galleries' share one maker: a 16-bit grey scan is scaled to 8 bits, not
    # clipped to white by Pillow's RGB conversion.
    import base64
    import io

    from flows.report import _thumb
    from pipeline.storage import Storage

    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (48, 1))
    Image.fromarray(ramp).save(tmp_path / "scan16.png")
    shown = _thumb(Storage(), str(tmp_path / "scan16.png"))
    data = base64.b64decode(shown.split("base64,", 1)[1].rstrip(")"))
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)
    assert 100 < pixels.mean() < 155 and pixels[:, :4].mean() < 40  # a ramp from black, not a white field
