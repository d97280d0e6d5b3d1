"""Encoding one restored image (every page of a multi-page TIFF) in its output format with the source's
metadata (EXIF, ICC profile, DPI, alpha, 16 bits where the format has them). ``stages.encode_and_write``
calls ``encode`` per row; its docstring lists the rules."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from PIL import ExifTags, Image, TiffImagePlugin, TiffTags

# JPEG 4:4:4 at quality 95 keeps restored detail in the colour channels; TIFF (written by _tiff) stays
# lossless, deflate-compressed; WebP is lossless too, because its lossy mode always halves colour
# resolution (4:2:0).
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "PNG": {},
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"lossless": True},
}
_DEEP_MODES = {2: "LA", 3: "RGB", 4: "RGBA"}  # 16-bit colour: the Pillow mode it would have at 8 bits
_TIFF_STRIP_BYTES = 1 << 16  # uncompressed bytes per strip, as Pillow's TIFF writer
_TIFF_PHOTOMETRIC = {"L": 1, "LA": 1, "I;16": 1, "RGB": 2, "RGBA": 2, "CMYK": 5}  # min-is-black, RGB, CMYK
_ICC_SPACES = {"L": b"GRAY", "LA": b"GRAY", "I;16": b"GRAY", "RGB": b"RGB ", "RGBA": b"RGB ", "CMYK": b"CMYK"}


class Page(Protocol):
    """A later page of a multi-page TIFF, restored, with its own metadata (decoding.Decoded is one)."""

    pixels: np.ndarray
    mode: str
    exif: bytes
    icc: bytes
    dpi: tuple[float, float]


def encode(
    restored: np.ndarray,
    source_mode: str,
    fmt: str,
    exif: bytes,
    icc: bytes,
    dpi: tuple[float, float],
    bigtiff: bool = False,
    more_pages: Sequence[Page] = (),
) -> bytes:
    """``more_pages`` (TIFF only) follow the first page in the same file; ``bigtiff`` makes a TIFF a BigTIFF
    whatever its size (an input that was one), where otherwise only one past 4 GiB is."""
    if fmt == "TIFF":
        pages = [(restored, source_mode, exif, icc, dpi)]
        pages += [(p.pixels, p.mode, p.exif, p.icc, p.dpi) for p in more_pages]
        return _tiff_pages([_tiff_page(*page) for page in pages], bigtiff=True if bigtiff else None)
    if more_pages:
        raise ValueError(f"{len(more_pages) + 1} pages cannot be written as {fmt}")
    output, _, icc = _prepared(restored, source_mode, fmt, icc)
    known_dpi = dpi if dpi[0] > 0 and dpi[1] > 0 else None
    if isinstance(output, np.ndarray):
        return _png16(output, exif, icc, known_dpi)
    options = dict(_SAVE_OPTIONS[fmt])
    if exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    if known_dpi:
        options["dpi"] = known_dpi
    buffer = io.BytesIO()
    output.save(buffer, fmt, **options)
    return buffer.getvalue()


def _prepared(
    restored: np.ndarray, source_mode: str, fmt: str, icc: bytes
) -> tuple[Image.Image | np.ndarray, str, bytes]:
    """The restored pixels as ``fmt`` writes them (an image, or an array where Pillow has no mode), that
    layout's Pillow mode, and the ICC profile if it fits that mode's colour space."""
    output: Image.Image | np.ndarray
    if restored.dtype == np.uint16 and source_mode == "CMYK" and fmt == "TIFF" and restored.shape[2] == 3:
        # As Pillow turns RGB into CMYK at 8 bits: C = full - R and so on, no black.
        inverse = 65535 - restored
        output, mode = np.concatenate([inverse, np.zeros_like(inverse[:, :, :1])], axis=2), "CMYK"
    elif restored.dtype == np.uint16 and restored.shape[2] > 1 and fmt in ("PNG", "TIFF"):
        # 16-bit colour, which Pillow has no image mode for, goes to the writers here as it is.
        if fmt == "TIFF" and restored.shape[2] == 2:
            restored = restored[:, :, [0, 0, 0, 1]]  # neither Pillow nor OpenCV reads 16-bit LA TIFF back
        output, mode = restored, _DEEP_MODES[restored.shape[2]]
    else:
        output = _output_image(restored, source_mode, fmt)
        mode = output.mode
    # A profile for another colour space (a CMYK input written as RGB PNG) would make viewers misread it.
    return output, mode, icc if icc[16:20] == _ICC_SPACES.get(mode) else b""


def _png16(pixels: np.ndarray, exif: bytes, icc: bytes, dpi: tuple[float, float] | None) -> bytes:
    """16-bit gray+alpha, RGB or RGBA pixels (HxWxC) as a PNG, written here: Pillow cannot write 16-bit
    colour, and OpenCV writes no gray+alpha and (before 4.12) no EXIF or ICC. Rows use the Sub filter."""
    height, width, channels = pixels.shape
    rows = pixels.astype(">u2").reshape(height, -1).view(np.uint8)  # PNG samples are big-endian
    filtered = rows.copy()
    filtered[:, 2 * channels :] -= rows[:, : -2 * channels]  # Sub: less the same byte of the pixel before
    scanlines = np.hstack([np.ones((height, 1), np.uint8), filtered])  # each row starts with its filter, 1
    colour_type = {2: 4, 3: 2, 4: 6}[channels]  # gray+alpha, RGB, RGBA
    chunks = [(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0))]
    if icc:
        chunks.append((b"iCCP", b"ICC Profile\0\0" + zlib.compress(icc)))
    if dpi:
        chunks.append((b"pHYs", struct.pack(">IIB", round(dpi[0] / 0.0254), round(dpi[1] / 0.0254), 1)))
    if exif:
        chunks.append((b"eXIf", exif.removeprefix(b"Exif\0\0")))  # the TIFF structure alone
    compressed = zlib.compress(scanlines.tobytes())
    chunks += [(b"IDAT", compressed[i : i + (1 << 20)]) for i in range(0, len(compressed), 1 << 20)]
    chunks.append((b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        for kind, body in chunks
    )


_BIGTIFF_HEADER = b"II\x2b\x00\x08\x00\x00\x00" + (16).to_bytes(8, "little")  # version 43, 8-byte offsets
_CLASSIC_LIMIT = 2**32 - (16 << 20)  # classic TIFF offsets are 32-bit; leave room for the IFD and tags


def _tiff_page(
    restored: np.ndarray, source_mode: str, exif: bytes, icc: bytes, dpi: tuple[float, float]
) -> tuple[np.ndarray, str, bytes, bytes, tuple[float, float] | None]:
    """One restored page as ``_tiff_pages`` takes it: pixels laid out as Pillow's mode, and metadata."""
    output, mode, icc = _prepared(restored, source_mode, "TIFF", icc)
    return np.asarray(output), mode, exif, icc, (dpi if dpi[0] > 0 and dpi[1] > 0 else None)


def _tiff(
    pixels: np.ndarray,
    mode: str,
    exif: bytes,
    icc: bytes,
    dpi: tuple[float, float] | None,
    bigtiff: bool | None = None,
) -> bytes:
    """One page as a TIFF (see _tiff_pages)."""
    return _tiff_pages([(pixels, mode, exif, icc, dpi)], bigtiff)


def _tiff_pages(
    pages: Sequence[tuple[np.ndarray, str, bytes, bytes, tuple[float, float] | None]],
    bigtiff: bool | None = None,
) -> bytes:
    """Pages of (pixels: HxW or HxWxC, uint8 or uint16, laid out as Pillow's ``mode``; exif; icc; dpi) as
    one TIFF of deflate strips, each page its IFD followed by its strips, the IFDs chained in order. Put
    together here around Pillow's IFD writer: Pillow's TIFF writer compresses through libtiff, which cannot
    write EXIF sub-IFDs (a camera JPEG's EXIF always has one: the whole save failed). ``bigtiff`` None: a
    BigTIFF (64-bit offsets, what scans over 4 GiB are stored as) exactly when the compressed strips would
    not fit a classic TIFF; a restoration is never lost for its size."""
    laid_out = [(_strips(pixels), pixels, mode, exif, icc, dpi) for pixels, mode, exif, icc, dpi in pages]
    if bigtiff is None:
        size = sum(sum(map(len, strips[1])) + len(exif) + len(icc) for strips, _, _, exif, icc, _ in laid_out)
        bigtiff = size > _CLASSIC_LIMIT
    buffer = io.BytesIO()
    next_pointer = 0  # where the IFD before holds the offset of the next one (0: none yet)
    for (rows, strips), pixels, mode, exif, icc, dpi in laid_out:
        ifd = _tiff_ifd(pixels, rows, strips, mode, exif, icc, dpi, bigtiff)
        if buffer.tell() == 0:
            ifd.save(buffer)  # the header, then the IFD
            start = 16 if bigtiff else 8
        else:
            buffer.write(b"\0" * (buffer.tell() & 1))  # IFDs start on a word boundary
            start = buffer.tell()
            buffer.write(ifd.tobytes(start))
            buffer.seek(next_pointer)
            buffer.write(start.to_bytes(8 if bigtiff else 4, "little"))
            buffer.seek(0, io.SEEK_END)
        count = len(ifd)
        next_pointer = start + (8 + 20 * count if bigtiff else 2 + 12 * count)
        for strip in strips:
            buffer.write(strip)
    if buffer.tell() >= 2**32 and not bigtiff:  # the estimate above was short: write it again as a BigTIFF
        return _tiff_pages(pages, bigtiff=True)
    return buffer.getvalue()


def _strips(pixels: np.ndarray) -> tuple[int, list[bytes]]:
    """Rows per strip, and the deflate-compressed strips (little-endian samples)."""
    samples = pixels.reshape(pixels.shape[0], pixels.shape[1], -1).astype(
        pixels.dtype.newbyteorder("<"), copy=False
    )
    height = samples.shape[0]
    rows = max(1, min(height, _TIFF_STRIP_BYTES // max(1, samples[0].nbytes)))
    return rows, [zlib.compress(samples[y : y + rows].tobytes()) for y in range(0, height, rows)]


def _tiff_ifd(
    pixels: np.ndarray,
    rows: int,
    strips: list[bytes],
    mode: str,
    exif: bytes,
    icc: bytes,
    dpi: tuple[float, float] | None,
    bigtiff: bool,
) -> TiffImagePlugin.ImageFileDirectory_v2:
    """One page's IFD, its strip offsets counted from the end of the IFD (Pillow's writer adds where)."""
    height, width = pixels.shape[:2]
    channels = pixels.shape[2] if pixels.ndim == 3 else 1
    if bigtiff:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(ifh=_BIGTIFF_HEADER)
    else:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag, value in _exif_tags(exif).items():
        ifd[tag] = value
    offsets = TiffTags.LONG8 if bigtiff else TiffTags.LONG
    ifd.tagtype[TiffImagePlugin.STRIPOFFSETS] = ifd.tagtype[TiffImagePlugin.STRIPBYTECOUNTS] = offsets
    layout = {
        TiffImagePlugin.IMAGEWIDTH: width,
        TiffImagePlugin.IMAGELENGTH: height,
        TiffImagePlugin.BITSPERSAMPLE: (pixels.itemsize * 8,) * channels,
        TiffImagePlugin.COMPRESSION: 8,  # Adobe deflate
        TiffImagePlugin.PHOTOMETRIC_INTERPRETATION: _TIFF_PHOTOMETRIC[mode],
        TiffImagePlugin.STRIPOFFSETS: tuple(itertools.accumulate(map(len, strips[:-1]), initial=0)),
        TiffImagePlugin.SAMPLESPERPIXEL: channels,
        TiffImagePlugin.ROWSPERSTRIP: rows,
        TiffImagePlugin.STRIPBYTECOUNTS: tuple(map(len, strips)),
        TiffImagePlugin.PLANAR_CONFIGURATION: 1,
    }
    if mode in ("LA", "RGBA"):
        layout[TiffImagePlugin.EXTRASAMPLES] = 2  # unassociated alpha
    if dpi:
        layout |= {
            TiffImagePlugin.RESOLUTION_UNIT: 2,  # inch
            TiffImagePlugin.X_RESOLUTION: dpi[0],
            TiffImagePlugin.Y_RESOLUTION: dpi[1],
        }
    if icc:
        layout[TiffImagePlugin.ICCPROFILE] = icc
    for tag, value in layout.items():
        ifd[tag] = value
    return ifd


def _exif_tags(exif: bytes) -> dict[int, Any]:
    """EXIF bytes as IFD tags for Pillow's IFD writer, which writes a dict as a sub-IFD: the EXIF and GPS
    ones, and Interop within EXIF (as Image.Exif.tobytes does)."""
    if not exif:
        return {}
    parsed = Image.Exif()
    parsed.load(exif)
    tags = dict(parsed)
    for group in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop):  # Interop is in Exif's
        parent = tags.get(ExifTags.IFD.Exif, {}) if group == ExifTags.IFD.Interop else tags
        if group in parent:  # an offset: replaced by its sub-IFD, or dropped if that is unreadable
            sub_ifd = parsed.get_ifd(group)
            if sub_ifd:
                parent[group] = dict(sub_ifd)
            else:
                del parent[group]
    return tags


def _output_image(restored: np.ndarray, source_mode: str, fmt: str) -> Image.Image:
    pixels = restored
    if pixels.dtype == np.uint16 and fmt in ("JPEG", "WEBP"):
        pixels = ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)  # rounds v * 255 / 65535
    image = Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    if source_mode == "CMYK" and fmt in ("JPEG", "TIFF"):
        return image.convert("CMYK")
    if fmt == "JPEG" and image.mode in ("LA", "RGBA"):
        return image.convert(image.mode[:-1])
    if fmt == "WEBP" and image.mode in ("L", "LA"):
        return image.convert("RGBA" if image.mode == "LA" else "RGB")
    return image
