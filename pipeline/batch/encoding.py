"""Encoding one restored image in its output format with the source's metadata (EXIF, ICC profile, DPI,
alpha, 16 bits where the format has them). ``stages.encode_and_write`` calls ``encode`` per row; its
docstring lists the rules."""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from typing import Any

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


def encode(
    restored: np.ndarray, source_mode: str, fmt: str, exif: bytes, icc: bytes, dpi: tuple[float, float]
) -> bytes:
    output: Image.Image | np.ndarray
    if restored.dtype == np.uint16 and restored.shape[2] > 1 and fmt in ("PNG", "TIFF"):
        # 16-bit colour, which Pillow has no image mode for, goes to the writers here as it is.
        if fmt == "TIFF" and restored.shape[2] == 2:
            restored = restored[:, :, [0, 0, 0, 1]]  # neither Pillow nor OpenCV reads 16-bit LA TIFF back
        output, mode = restored, _DEEP_MODES[restored.shape[2]]
    else:
        output = _output_image(restored, source_mode, fmt)
        mode = output.mode
    # A profile for another colour space (a CMYK input written as RGB PNG) would make viewers misread it.
    icc = icc if icc[16:20] == _ICC_SPACES.get(mode) else b""
    known_dpi = dpi if dpi[0] > 0 and dpi[1] > 0 else None
    if fmt == "TIFF":
        return _tiff(np.asarray(output), mode, exif, icc, known_dpi)
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


def _tiff(
    pixels: np.ndarray,
    mode: str,
    exif: bytes,
    icc: bytes,
    dpi: tuple[float, float] | None,
    bigtiff: bool | None = None,
) -> bytes:
    """``pixels`` (HxW or HxWxC, uint8 or uint16, laid out as Pillow's ``mode``) as a TIFF of deflate
    strips, put together here around Pillow's IFD writer: Pillow's TIFF writer compresses through libtiff,
    which cannot write EXIF sub-IFDs (a camera JPEG's EXIF always has one: the whole save failed).
    ``bigtiff`` None: a BigTIFF (64-bit offsets, what scans over 4 GiB are stored as) exactly when the
    compressed strips would not fit a classic TIFF; a restoration is never lost for its size."""
    samples = pixels.reshape(pixels.shape[0], pixels.shape[1], -1).astype(
        pixels.dtype.newbyteorder("<"), copy=False
    )
    height, width, channels = samples.shape
    rows = max(1, min(height, _TIFF_STRIP_BYTES // max(1, samples[0].nbytes)))
    strips = [zlib.compress(samples[y : y + rows].tobytes()) for y in range(0, height, rows)]
    if bigtiff is None:
        bigtiff = sum(map(len, strips)) + len(exif) + len(icc) > _CLASSIC_LIMIT
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
        TiffImagePlugin.BITSPERSAMPLE: (samples.itemsize * 8,) * channels,
        TiffImagePlugin.COMPRESSION: 8,  # Adobe deflate
        TiffImagePlugin.PHOTOMETRIC_INTERPRETATION: _TIFF_PHOTOMETRIC[mode],
        # From the end of the IFD: Pillow's IFD writer adds where that is.
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
    buffer = io.BytesIO()
    ifd.save(buffer)
    for strip in strips:
        buffer.write(strip)
    if buffer.tell() >= 2**32 and not bigtiff:  # the estimate above was short: write it again as a BigTIFF
        return _tiff(pixels, mode, exif, icc, dpi, bigtiff=True)
    return buffer.getvalue()


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
