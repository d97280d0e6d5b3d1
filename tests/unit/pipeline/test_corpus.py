"""A standing adversarial corpus (#9): many kinds of odd, hostile or broken files, each generated here, run
through the real stages (fetch -> decode -> an identity restore -> encode_and_write) in ONE batch, with the
expected status and reason per kind. One bad file must never affect its neighbours."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageCms, PngImagePlugin
from skimage import data
from stage_batches import restore

from pipeline.batch.stages import decode, encode_and_write, fetch
from pipeline.storage import Storage

GRAY_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()  # any profile; gray tested below
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MAX_PIXELS = 1_000_000


def _photo(mode: str = "RGB", size: tuple[int, int] = (40, 30)) -> Image.Image:
    return Image.fromarray(data.astronaut()).resize(size).convert(mode)


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims a huge size in its header (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _gif_header_only(width: int, height: int) -> bytes:
    gif = bytearray(_save(_photo("L", (8, 8)), "GIF"))
    gif[6:10] = struct.pack("<HH", width, height)  # the logical screen, which Pillow takes as the size
    return bytes(gif)


def _tiff_header_only(width: int, height: int) -> bytes:
    """A little-endian TIFF whose IFD claims width x height 8-bit gray pixels in one (absent) strip."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8)]
    tags += [(277, 3, 1), (278, 4, height), (279, 4, width * height)]
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, k, 1, v) for t, k, v in tags)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + b"\x00\x00\x00\x00"


def _with_exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return _save(_photo(), "JPEG", exif=exif.tobytes())


def _text_bomb() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * 5_000_000, zip=True)  # 5 MB of text in a few KB of zTXt
    return _save(_photo(), "PNG", pnginfo=info)


def _animated(fmt: str) -> bytes:
    frames = [_photo().rotate(angle) for angle in (0, 10, 20)]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:])


def _deep_rgb_png() -> bytes:
    import cv2

    ok, encoded = cv2.imencode(".png", (np.asarray(_photo())[:, :, ::-1].astype(np.uint16) * 257))
    assert ok
    return encoded.tobytes()


def _bad_crc_png() -> bytes:
    png = bytearray(_save(_photo(), "PNG"))
    png[29] ^= 0xFF  # IHDR's CRC
    return bytes(png)


# kind -> (file name, bytes maker, expected status, expected reason prefix ("" for ok rows))
CORPUS: dict[str, tuple[str, Callable[[], bytes], str, str]] = {
    "0-byte": ("empty.jpg", lambda: b"", "failed", "0-byte file"),
    "truncated jpeg": (
        "cut.jpg",
        lambda: _save(_photo(), "JPEG")[:300],
        "failed",
        "truncated or corrupt image",
    ),
    "random bytes": ("noise.png", lambda: np.random.default_rng(0).bytes(4096), "failed", "not an image"),
    "text named .jpg": ("notes.jpg", lambda: b"shopping list\n" * 20, "failed", "not an image"),
    "html named .png": (
        "page.png",
        lambda: b"<!doctype html><html><body>hi</body></html>",
        "failed",
        "not an image",
    ),
    "svg": ("drawing.svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"/>', "failed", "not an image"),
    "pdf": ("scan.pdf", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "failed", "not an image"),
    "eps renamed": (
        "art.jpg",
        lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
        "failed",
        "not an image",
    ),
    "png bomb header": (
        "bomb.png",
        lambda: _png_header_only(100_000, 100_000),
        "failed",
        "image is 100000x100000",
    ),
    "gif bomb header": (
        "bomb.gif",
        lambda: _gif_header_only(65535, 65535),
        "failed",
        "image is 65535x65535",
    ),
    "tiff bomb header": (
        "bomb.tif",
        lambda: _tiff_header_only(60_000, 60_000),
        "failed",
        "image is 60000x60000",
    ),
    # Pillow refuses to inflate more than 1 MB of text: the row fails, nothing is inflated.
    "png text bomb": ("text.png", _text_bomb, "failed", "truncated or corrupt image: Decompressed data too"),
    "exif orientation 6": ("turned.jpg", lambda: _with_exif_orientation(6), "ok", ""),
    "exif orientation 9 (invalid)": ("odd.jpg", lambda: _with_exif_orientation(9), "ok", ""),
    "cmyk jpeg": ("cmyk.jpg", lambda: _save(_photo("CMYK"), "JPEG"), "ok", ""),
    "rgb jpeg with icc": ("icc.jpg", lambda: _save(_photo(), "JPEG", icc_profile=SRGB), "ok", ""),
    "gray jpeg": ("gray.jpg", lambda: _save(_photo("L"), "JPEG"), "ok", ""),
    "rgba png": ("alpha.png", lambda: _save(_photo("RGBA"), "PNG"), "ok", ""),
    "la png": ("la.png", lambda: _save(_photo("LA"), "PNG"), "ok", ""),
    "palette with transparency": (
        "pal.png",
        lambda: _save(_photo().quantize(16), "PNG", transparency=0),
        "ok",
        "",
    ),
    "16-bit gray png": (
        "deep.png",
        lambda: _save(Image.fromarray(np.asarray(_photo("L")).astype(np.uint16) * 257), "PNG"),
        "ok",
        "",
    ),
    "16-bit rgb png": ("deep-rgb.png", _deep_rgb_png, "ok", ""),
    "1-bit": ("bits.png", lambda: _save(_photo("1"), "PNG"), "ok", ""),
    "webp": ("photo.webp", lambda: _save(_photo(), "WEBP", lossless=True), "ok", ""),
    "bmp": ("photo.bmp", lambda: _save(_photo(), "BMP"), "ok", ""),
    "gif": ("photo.gif", lambda: _save(_photo().quantize(64), "GIF"), "ok", ""),
    "jpeg 2000": ("photo.jp2", lambda: _save(_photo(), "JPEG2000"), "ok", ""),
    "jpeg/zip polyglot": (
        "poly.jpg",
        lambda: _save(_photo(), "JPEG") + b"PK\x03\x04" + b"\x00" * 26,
        "ok",
        "",
    ),
    "float tiff 0..1": (
        "float.tif",
        lambda: _save(Image.fromarray(np.asarray(_photo("L"), np.float32) / 255), "TIFF"),
        "ok",
        "",
    ),
    "multi-page tiff": ("pages.tif", lambda: _animated("TIFF"), "ok", ""),  # every page restored
    "animated gif": ("anim.gif", lambda: _animated("GIF"), "failed", "animated GIF (3 frames)"),
    "animated png": ("anim.png", lambda: _animated("PNG"), "failed", "animated PNG (3 frames)"),
    "animated webp": ("anim.webp", lambda: _animated("WEBP"), "failed", "animated WebP (3 frames)"),
    "png with a bad crc": ("crc.png", _bad_crc_png, "failed", "truncated or corrupt image"),
}


def test_the_corpus_has_at_least_30_kinds():
    assert len(CORPUS) >= 30


def test_every_kind_gets_its_status_and_reason_in_one_batch(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    uris = []
    for name, make, _, _ in CORPUS.values():
        (folder / name).write_bytes(make())
        uris.append(str(folder / name))
    batch = {
        "id": np.array(list(CORPUS), dtype=object),
        "uri": np.array(uris, dtype=object),
    }
    storage = Storage()
    decoded = decode(fetch(batch, storage), MAX_PIXELS)
    result = encode_and_write(restore(decoded), str(tmp_path / "out"), "same", storage, "corpus-model")

    got = {
        kind: (status, error)
        for kind, status, error in zip(result["id"], result["status"], result["error"], strict=True)
    }
    wrong = {
        kind: got[kind]
        for kind, (_, _, status, reason) in CORPUS.items()
        if got[kind][0] != status or not got[kind][1].startswith(reason)
    }
    assert wrong == {}
    for kind, uri in zip(result["id"], result["output_uri"], strict=True):
        if got[kind][0] == "ok":
            with Image.open(uri) as written:
                written.load()  # every ok row wrote a whole image
    originals = {name: make for name, make, _, _ in CORPUS.values()}
    assert sorted(p.name for p in folder.iterdir()) == sorted(originals)  # nothing written beside inputs
