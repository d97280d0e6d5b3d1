"""Odd image files made in code and the stage round trip they go through, shared by test_odd_images.py and
test_odd_encodings.py: fetch -> decode -> an identity restore -> encode_and_write on hand-built batches."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageCms
from skimage import data
from stage_batches import manifest, restore

from pipeline.batch.stages import decode, encode_and_write, fetch, image_at
from pipeline.storage import Storage

MODEL = "patina-test-v1"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MAKE, ORIENTATION, EXIF_IFD, GPS_IFD = 0x010F, 0x0112, 0x8769, 0x8825
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(src: str, out: Path, output_format: str = "same"):
    storage = Storage()
    decoded = decode(fetch(manifest([src]), storage), 10**6)
    result = encode_and_write(restore(decoded), str(out), output_format, storage, MODEL)
    return decoded, {name: values[0] for name, values in result.items()}


def reopen(uri: str) -> dict:
    """One output decoded by the stages themselves, as a dict of that row's values."""
    batch = decode(fetch(manifest([uri]), Storage()), 10**6)
    assert batch["error"][0] == ""
    return {**{name: values[0] for name, values in batch.items()}, "pixels": image_at(batch, 0)}


def write(path: Path, body: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return str(path)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (40, 30)) -> np.ndarray:
    """Real photo content (skimage's astronaut), small, HxWx3 uint8."""
    return np.asarray(Image.fromarray(data.astronaut()).resize(size, Image.Resampling.BILINEAR))


def deep(channels: int, size: tuple[int, int] = (40, 30), seed: int = 0) -> np.ndarray:
    """16-bit content whose low bytes matter: a photo in the high byte, noise in the low byte."""
    rgb = photo(size).astype(np.uint16) * 256
    gray = rgb[:, :, :1]
    alpha = np.linspace(0, 255, size[0] * size[1], dtype=np.uint16).reshape(size[1], size[0], 1) * 256
    base = {1: gray, 2: np.concatenate([gray, alpha], 2), 3: rgb, 4: np.concatenate([rgb, alpha], 2)}
    noise = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], channels), dtype=np.uint16)
    return base[channels] + noise


def chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png16(pixels: np.ndarray, *chunks: bytes) -> bytes:
    """A 16-bit PNG of any channel count (gray, gray+alpha, RGB, RGBA), written by hand: neither Pillow
    nor OpenCV writes 16-bit gray+alpha. ``chunks`` go between IHDR and IDAT."""
    height, width, channels = pixels.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    raw = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    return (
        PNG_SIGNATURE
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))
        + b"".join(chunks)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def cv2_encoded(pixels: np.ndarray, ext: str) -> bytes:
    ok, buffer = cv2.imencode(ext, pixels[:, :, [2, 1, 0, 3][: pixels.shape[2]]])  # RGB(A) -> BGR(A)
    assert ok
    return buffer.tobytes()


def tiff_encoded(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, **options)
    return buffer.getvalue()


def exif_with(orientation: int | None = None, camera: bool = False) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE] = "Patina Test Camera"
    if orientation is not None:
        exif[ORIENTATION] = orientation
    if camera:  # what every camera writes: an EXIF sub-IFD (with a large maker note) and GPS
        exif[EXIF_IFD] = {0x9003: "2001:02:03 04:05:06", 0x927C: bytes(range(256)) * 160, 0x9286: b"A" * 300}
        exif[GPS_IFD] = {1: "N", 2: (52.0, 22.0, 7.5)}
    return exif


def exif_of(row: dict) -> Image.Exif:
    exif = Image.Exif()
    exif.load(row["exif"])
    return exif
