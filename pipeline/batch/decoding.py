"""Decoding one image file into pixels and the metadata its output keeps: what Pillow reads (OpenCV for
16-bit colour Pillow reads at 8 bits), and a one-line reason for every file that cannot be restored as it
is. ``stages.decode`` calls ``decode_one`` per row; its docstring lists the rules for every odd input."""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, TiffImagePlugin, UnidentifiedImageError

from model.formats import DECODE_FORMATS
from pipeline.manifest import one_line

_ORIENTATION = ExifTags.Base.Orientation
_NEW_SUBFILE_TYPE = 254
_PNG_COLOUR_TYPES = {2: "RGB", 4: "LA", 6: "RGBA"}  # those Pillow reads at 8 bits when they have 16
# EXIF orientation -> the view of an HxWxC array that makes it upright, as ImageOps.exif_transpose does.
_UPRIGHT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}
_PHOTOMETRIC_NAMES = {
    0: "gray",
    1: "gray",
    2: "RGB",
    3: "palette",
    4: "mask",
    5: "CMYK",
    6: "YCbCr",
    8: "CIELab",
}
_SAMPLE_FORMATS = {1: "unsigned", 2: "signed", 3: "float"}
_MULTI_FRAME = {
    "TIFF": "multi-page TIFF ({} pages)",
    "GIF": "animated GIF ({} frames)",
    "PNG": "animated PNG ({} frames)",
    "WEBP": "animated WebP ({} frames)",
}
# TIFF tags that describe the source file's pixel layout (a TIFF's EXIF is its main IFD), and blobs kept
# elsewhere or stale after restoration. Resolution travels in dpi_x/dpi_y.
# fmt: off
_NOT_EXIF = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317, 320, 322, 323, 324,
    325, 330, 338, 339, 347, 513, 514, 529, 530, 531, 532, 34377, 34675, 37724,
}
# fmt: on


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray
    format: str = ""
    mode: str = ""
    exif: bytes = b""
    icc: bytes = b""
    dpi: tuple[float, float] = (0.0, 0.0)
    error: str = ""


PLACEHOLDER = np.zeros((0, 0, 0), np.uint8)  # a failed row's image: no bytes at all


class Unrestorable(Exception):
    """An image that cannot be restored as it is; its message is the row's whole reason."""


def decode_one(data: bytes, max_pixels: int) -> Decoded:
    try:
        return _decode_image(data, max_pixels)
    except Unrestorable as exc:
        error = str(exc)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        error = f"{one_line(exc)} (raise --max-pixels)"
    except Exception as exc:  # corrupt files make Pillow raise almost anything (OSError, ValueError, ...)
        error = f"truncated or corrupt image: {one_line(exc)}"
    return Decoded(PLACEHOLDER, error=error)


def _decode_image(data: bytes, max_pixels: int) -> Decoded:
    # Pillow's own pixel limit is off while reading the header: the test below is the same one, against
    # the job's limit, with a message that gives the size.
    with _pillow_guard(pixel_limit=None):
        try:
            image = Image.open(io.BytesIO(data), formats=DECODE_FORMATS)
        except UnidentifiedImageError:
            raise Unrestorable(_unidentified(data)) from None
    width, height = image.size
    if width * height > max_pixels:
        raise Image.DecompressionBombError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    _refuse_extra_frames(image)
    deep, readable = _deep_colour(data, image)
    if deep and not readable:
        raise Unrestorable(f"{deep} is not supported; restoring it at 8 bits would lose precision")
    # On while loading: frames, tiles and sub-images can claim more pixels than the header did.
    with _pillow_guard(pixel_limit=max_pixels):
        orientation = image.getexif().get(_ORIENTATION)  # before load: loading a TIFF applies it
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        pixels = _pixels(image)
    if deep:
        pixels = _full_depth(data, image, orientation, pixels, deep)
    dpi_x, dpi_y = (float(v) for v in image.info.get("dpi", (0.0, 0.0)))
    if orientation in (5, 6, 7, 8):  # a quarter turn swaps the axes
        dpi_x, dpi_y = dpi_y, dpi_x
    return Decoded(
        pixels,
        format=image.format or "",
        mode=image.mode,
        exif=_exif_bytes(image, had_orientation=orientation is not None),
        icc=image.info.get("icc_profile") or b"",
        dpi=(dpi_x, dpi_y),
    )


def _deep_colour(data: bytes, image: Image.Image) -> tuple[str, bool]:
    """A name such as "16-bit RGB PNG" for a colour or gray+alpha image with more bits per sample than the 8
    Pillow reads it at ("" for others: Pillow reads 16-bit gray at full depth itself, as I;16), and whether
    _full_depth can read it: PNG does; TIFF does but for separate colour planes, which OpenCV reads as if
    interleaved (so does Pillow, uncompressed); JPEG 2000 does not."""
    if image.format == "PNG":
        bits, layout = data[24], _PNG_COLOUR_TYPES.get(data[25], "")  # in IHDR, always the first chunk
    elif image.format in ("TIFF", "JPEG2000") and not image.mode.startswith(("I", "F")):
        if image.format == "TIFF":
            bits = image.tag_v2.get(TiffImagePlugin.BITSPERSAMPLE, 1)
            bits = max(bits) if isinstance(bits, tuple) else bits
        else:
            bits = _jpeg2000_bits(data)
        layout = image.mode
    else:
        return "", True
    if not layout or bits <= 8:
        return "", True
    if image.format == "TIFF" and image.tag_v2.get(TiffImagePlugin.PLANAR_CONFIGURATION) == 2:
        return f"{bits}-bit {layout} TIFF with separate colour planes", False
    name = "JPEG 2000" if image.format == "JPEG2000" else image.format
    return f"{bits}-bit {layout} {name}", image.format != "JPEG2000"


def _jpeg2000_bits(data: bytes) -> int:
    """The deepest component's bits per sample, from the codestream's SIZ marker segment, which a .jp2
    holds in its jp2c box; 0 if not found."""
    start = 0
    if not data.startswith(b"\xff\x4f"):  # a .jp2: boxes (length, type), up to the codestream's
        start = -1
        position = 0
        while position + 8 <= len(data):
            length, kind = struct.unpack_from(">I4s", data, position)
            header = 8
            if length == 1:  # a 64-bit length follows
                (length,), header = struct.unpack_from(">Q", data, position + 8), 16
            elif length == 0:  # the last box
                length = len(data) - position
            if kind == b"jp2c":
                start = position + header
                break
            if length < header:
                break
            position += length
    siz = data[start : start + 42] if start >= 0 else b""
    if len(siz) < 42 or not siz.startswith(b"\xff\x4f\xff\x51"):
        return 0
    components = struct.unpack_from(">H", siz, 40)[0]
    ssiz = data[start + 42 : start + 42 + 3 * components : 3]  # per component: Ssiz, XRsiz, YRsiz
    return max(((depth & 0x7F) + 1 for depth in ssiz), default=0)


def _full_depth(
    data: bytes, image: Image.Image, orientation: int | None, shallow: np.ndarray, deep: str
) -> np.ndarray:
    """A 16-bit colour PNG or TIFF read again by OpenCV at full depth (uint16 HxWxC), and accepted only if
    its high bytes are exactly Pillow's 8-bit reading ``shallow``: same layout, orientation and channel
    order, so no difference between the two readers can pass unnoticed."""
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is not None and array.dtype == np.uint16 and array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) -> RGB(A)
        if image.format == "PNG":  # OpenCV turns a TIFF by its orientation itself, never a PNG by its EXIF
            array = _UPRIGHT.get(orientation, lambda a: a)(array)
        if array.shape == shallow.shape and np.array_equal(array >> 8, shallow):
            gray_alpha = image.format == "PNG" and data[25] == 4  # both readers return it as RGBA
            return np.ascontiguousarray(array[:, :, [0, 3]] if gray_alpha else array)
    raise Unrestorable(f"{deep} could not be read at full depth; restoring it at 8 bits would lose precision")


def _unidentified(data: bytes) -> str:
    """Why no reader took the file. Image.open drops the reason when a file that starts as one of
    DECODE_FORMATS does is corrupt (a PNG whose header fails its CRC), so that format's reader is asked."""
    for fmt in DECODE_FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if accept is not None and accept(data[:16]):
            try:
                factory(io.BytesIO(data), "").close()
            except Exception as exc:
                if fmt == "TIFF" and str(exc) == "unknown pixel mode":  # valid, but no Pillow mode fits
                    return _tiff_layout(data)
                return f"truncated or corrupt image: {one_line(exc)}"
    return "not an image (unrecognised format)"


def _tiff_layout(data: bytes) -> str:
    """The reason for a TIFF whose pixels Pillow has no mode for (float RGB, 16-bit gray+alpha...): what
    its first IFD says they are."""
    try:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:16] if data[2] == 43 else data[:8])  # 43: BigTIFF
        fp = io.BytesIO(data)
        fp.seek(ifd.next)
        ifd.load(fp)
        bits = ifd.get(TiffImagePlugin.BITSPERSAMPLE, (1,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        sample_format = ifd.get(TiffImagePlugin.SAMPLEFORMAT, (1,))
        sample_format = sample_format[0] if isinstance(sample_format, tuple) else sample_format
        photometric = _PHOTOMETRIC_NAMES.get(ifd.get(TiffImagePlugin.PHOTOMETRIC_INTERPRETATION), "unknown")
        samples = ifd.get(TiffImagePlugin.SAMPLESPERPIXEL, len(bits))
    except Exception:
        return "unsupported TIFF pixel layout"
    depth = "/".join(str(b) for b in sorted(set(bits)))
    kind = _SAMPLE_FORMATS.get(sample_format, "unknown")
    return f"unsupported TIFF pixel layout: {photometric}, {samples} x {depth}-bit {kind} samples per pixel"


def _refuse_extra_frames(image: Image.Image) -> None:
    """Only the first frame is restored, so an image with more fails rather than lose them. Previews are
    no frames: an MPO's extra pictures (a camera JPEG's) and a TIFF's reduced-resolution pages (their
    NewSubfileType is 1). Seeks frames' headers only, and leaves the image at its first frame."""
    frames = getattr(image, "n_frames", 1)
    if frames == 1 or image.format == "MPO":
        return
    if image.format == "TIFF":
        for page in range(1, image.n_frames):
            image.seek(page)
            frames -= image.tag_v2.get(_NEW_SUBFILE_TYPE) == 1
        image.seek(0)
    if frames > 1:
        kind = _MULTI_FRAME.get(image.format, image.format + " with {} frames").format(frames)
        raise Unrestorable(f"{kind}; only single-frame images are restored")


@contextlib.contextmanager
def _pillow_guard(pixel_limit: int | None) -> Iterator[None]:
    """Pillow keeps its pixel limit and truncated-file leniency in module globals; set them only while
    decoding (truncated files must fail, over-limit images raise instead of warning) and put back what
    the process had. Not thread-safe: decode runs one image at a time."""
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = pixel_limit, False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _pixels(image: Image.Image) -> np.ndarray:
    """A loaded image as HxWxC (see decode): numpy views Pillow's bytes, so only conversions copy."""
    mode = image.mode
    if mode.startswith("I;16"):
        array = np.asarray(image).astype(np.uint16, copy=False)  # I;16B is big-endian: made native
    elif mode == "I":
        array = _in_range(np.asarray(image), 0, 65535, "32-bit integer").astype(np.uint16)
    elif mode == "F":
        array = _from_float(np.asarray(image))
    elif mode in ("L", "LA", "RGB", "RGBA"):
        array = np.asarray(image)
    elif mode == "1":
        array = np.asarray(image.convert("L"))
    else:
        # True for alpha modes (PA, RGBa...) and palette or RGB transparency; LAB's "A" band is a colour.
        array = np.asarray(image.convert("RGBA" if image.has_transparency_data else "RGB"))
    return array[:, :, None] if array.ndim == 2 else array


def _from_float(values: np.ndarray) -> np.ndarray:
    """Float pixels, which have no standard range (see decode): 0..1 -> uint16, else 0..255 -> uint8."""
    if not np.isfinite(values).all():
        raise Unrestorable("float image has NaN or infinite values; only finite values can be restored")
    if values.min() >= 0 and values.max() <= 1:
        return np.rint(values * 65535).astype(np.uint16)
    return np.rint(_in_range(values, 0, 255, "float")).astype(np.uint8)


def _in_range(values: np.ndarray, low: float, high: float, kind: str) -> np.ndarray:
    """``values`` if all lie in low..high; otherwise the row fails: clipping would lose data silently."""
    if values.size and (values.min() < low or values.max() > high):
        raise Unrestorable(
            f"{kind} values {values.min():g}..{values.max():g} fall outside {low:g}..{high:g}; "
            "clipping them would lose data (rescale the file first)"
        )
    return values


def _exif_bytes(image: Image.Image, had_orientation: bool) -> bytes:
    exif = image.getexif()
    for tag in _NOT_EXIF:
        exif.pop(tag, None)
    if had_orientation:
        exif[_ORIENTATION] = 1  # the pixels are upright now
    # A BigTIFF's tags come with a BigTIFF header, which no EXIF reader (Pillow's own included) parses:
    # EXIF is always written in the classic layout, whatever the file it came from.
    exif.bigtiff = False
    return exif.tobytes() if len(exif) else b""
