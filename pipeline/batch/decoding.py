"""Decoding one image file into pixels and the metadata its output keeps: what Pillow reads (tifffile, or
OpenCV, for 16-bit colour Pillow reads at 8 bits and for the TIFF layouts Pillow has no mode for), every page
of a multi-page TIFF, and a one-line reason for every file that cannot be restored as it is.
``stages.decode`` calls ``decode_one`` per row; its docstring lists the rules for every odd input."""

from __future__ import annotations

import contextlib
import io
import struct
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import tifffile
from PIL import ExifTags, Image, ImageFile, ImageOps, TiffImagePlugin, UnidentifiedImageError

from model.formats import DECODE_FORMATS
from pipeline.manifest import one_line

_ORIENTATION = ExifTags.Base.Orientation
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
    more_pages: tuple[Decoded, ...] = ()  # a multi-page TIFF's pages after the first, each decoded alike
    bigtiff: bool = False  # the input was a BigTIFF: a TIFF output is one too


@dataclass(frozen=True)
class TiffPage:
    """One page of a TIFF to restore: its IFD's place in the file's chain, size and sample layout."""

    index: int
    width: int
    height: int
    unsigned_32: bool  # 32-bit unsigned samples, which Pillow reads as signed (or not at all)


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
    pages = _tiff_pages(data)
    if pages:
        return _decode_tiff(data, pages, max_pixels)
    image = _open(data)
    _check_pixels(*image.size, max_pixels)
    _refuse_extra_frames(image)
    return _decode_frame(data, image, max_pixels)


def _open(data: bytes) -> Image.Image:
    """The file opened by Pillow, at its first frame. Pillow's own pixel limit is off while reading the
    header: _check_pixels is the same test, against the job's limit, with a message that gives the size."""
    with _pillow_guard(pixel_limit=None):
        try:
            return Image.open(io.BytesIO(data), formats=DECODE_FORMATS)
        except UnidentifiedImageError:
            raise Unrestorable(_unidentified(data)) from None


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise Image.DecompressionBombError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )


def _decode_frame(data: bytes, image: Image.Image, max_pixels: int, page: int = 0) -> Decoded:
    """The frame ``image`` is at (page ``page`` of a TIFF), upright, at full depth, with its metadata."""
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
        pixels = _full_depth(data, image, orientation, pixels, deep, page)
    dpi_x, dpi_y = (float(v) for v in image.info.get("dpi", (0.0, 0.0)))
    icc = image.info.get("icc_profile") or b""
    if page:  # Pillow's info keeps the first page's resolution and profile where a later page has none
        (dpi_x, dpi_y), icc = _ifd_dpi(image.tag_v2), image.tag_v2.get(TiffImagePlugin.ICCPROFILE) or b""
    if orientation in (5, 6, 7, 8):  # a quarter turn swaps the axes
        dpi_x, dpi_y = dpi_y, dpi_x
    return Decoded(
        pixels,
        format=image.format or "",
        mode=image.mode,
        exif=_exif_bytes(image.getexif(), had_orientation=orientation is not None),
        icc=icc if isinstance(icc, bytes) else b"",
        dpi=(dpi_x, dpi_y),
    )


# -- TIFF: every page, and the layouts Pillow reads at 8 bits or not at all --------------------------------


def _tiff_pages(data: bytes) -> list[TiffPage]:
    """The pages of a TIFF to restore, as tifffile lists its IFD chain: the first, and every later one but
    reduced-resolution copies (NewSubfileType bit 0: a scanner's preview or thumbnail of the page before).
    A preview of the unrestored scan would misrepresent the restored one, so previews are left out of the
    output, not restored. [] for other files, and for TIFFs tifffile cannot parse: Pillow then says why."""
    if data[:4] not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return []
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            return [
                TiffPage(
                    index,
                    int(page.imagewidth),
                    int(page.imagelength),
                    page.dtype == np.uint32 and page.sampleformat == 1,
                )
                for index, page in enumerate(tif.pages)
                if index == 0 or not page.subfiletype & 1
            ]
    except Exception:  # a damaged chain: the first page is read as before, and fails with Pillow's reason
        return []


def _decode_tiff(data: bytes, pages: list[TiffPage], max_pixels: int) -> Decoded:
    """Every page of a TIFF, each at its own size and depth; ``max_pixels`` bounds the pages' sum, since a
    row holds them all at once (as fetch's byte cap does). Page 1's reason fails the row as it is; a later
    page's names the page."""
    total = sum(page.width * page.height for page in pages)
    if len(pages) == 1:
        _check_pixels(pages[0].width, pages[0].height, max_pixels)
    elif total > max_pixels:
        raise Image.DecompressionBombError(
            f"multi-page TIFF has {total:,} pixels in its {len(pages)} pages, "
            f"over the limit of {max_pixels:,}"
        )
    decoded = []
    for page in pages:
        try:
            decoded.append(_decode_tiff_page(data, page, max_pixels))
        except Unrestorable as exc:
            if page.index == 0:
                raise
            raise Unrestorable(f"page {len(decoded) + 1} of {len(pages)}: {exc}") from None
    bigtiff = data[2:4] in (b"+\0", b"\0+")  # version 43
    return replace(decoded[0], more_pages=tuple(decoded[1:]), bigtiff=bigtiff)


def _decode_tiff_page(data: bytes, page: TiffPage, max_pixels: int) -> Decoded:
    if page.unsigned_32:
        return _unsigned_32_page(data, page.index)
    image = _open(data)
    if page.index:
        with _pillow_guard(pixel_limit=None):
            try:
                image.seek(page.index)
            except SyntaxError as exc:  # Pillow has no mode for this page's pixels
                if str(exc) != "unknown pixel mode":
                    raise
                raise Unrestorable(_tiff_layout(data, page.index)) from None
    return _decode_frame(data, image, max_pixels, page.index)


def _unsigned_32_page(data: bytes, index: int) -> Decoded:
    """A page of 32-bit unsigned samples (gray, gray+alpha, RGB, RGBA), read by tifffile: Pillow reads gray
    as signed (the upper half negative) and colour not at all. Scaled to 16 bits (v * 65535 / (2**32 - 1),
    rounded), which is what the restoration keeps: the model computes in float32 and outputs are written at
    8 or 16 bits. Tags come from the page's IFD as Pillow reads any TIFF's."""
    array, extra, _ = _tifffile_array(data, index)
    ifd = _ifd_exif(data, index)
    photometric = ifd.get(TiffImagePlugin.PHOTOMETRIC_INTERPRETATION)
    mode = {(1, 1): "I", (1, 2): "LA", (2, 3): "RGB", (2, 4): "RGBA"}.get((photometric, array.shape[2]))
    if mode is None:
        raise Unrestorable(_tiff_layout(data, index))
    if extra == 1:  # associated (premultiplied) alpha; restoration and outputs use unassociated
        array = _unpremultiplied(array, 2**32 - 1)
    pixels = ((array.astype(np.uint64) + 32768) // 65537).astype(np.uint16)  # rounds v * 65535 / (2**32 - 1)
    orientation = ifd.get(_ORIENTATION)
    pixels = np.ascontiguousarray(_UPRIGHT.get(orientation, lambda a: a)(pixels))
    dpi = _ifd_dpi(ifd)
    if orientation in (5, 6, 7, 8):
        dpi = dpi[::-1]
    icc = ifd.get(TiffImagePlugin.ICCPROFILE) or b""
    return Decoded(
        pixels,
        format="TIFF",
        mode=mode,
        exif=_exif_bytes(ifd, had_orientation=orientation is not None),
        icc=icc if isinstance(icc, bytes) else b"",
        dpi=dpi,
    )


def _ifd_exif(data: bytes, index: int) -> Image.Exif:
    """Page ``index``'s IFD as Pillow's Exif (what getexif gives for an open TIFF's frame), sub-IFDs loaded
    from the file on demand."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        offset, bigtiff, endian = tif.pages[index].offset, tif.is_bigtiff, tif.byteorder
    exif = Image.Exif()
    exif.bigtiff, exif.endian = bigtiff, endian
    exif.load_from_fp(io.BytesIO(data), offset)
    return exif


def _ifd_dpi(ifd: Mapping[int, Any]) -> tuple[float, float]:
    """Resolution in dots per inch, as Pillow gives it in info["dpi"]: from centimetres when the unit says
    so, (0, 0) when no unit is given or none is known."""
    unit = ifd.get(TiffImagePlugin.RESOLUTION_UNIT, 2)
    per_inch = {2: 1.0, 3: 2.54}.get(unit)
    x, y = ifd.get(TiffImagePlugin.X_RESOLUTION), ifd.get(TiffImagePlugin.Y_RESOLUTION)
    if per_inch is None or not x or not y:
        return (0.0, 0.0)
    return (float(x) * per_inch, float(y) * per_inch)


def _tifffile_array(data: bytes, index: int) -> tuple[np.ndarray, int | None, bool]:
    """Page ``index`` as tifffile reads it, HxWxC at its stored depth (separate colour planes interleaved),
    not turned by its orientation; the first extra sample's kind (1: associated alpha), None if none; and
    whether its colours were stored in separate planes.
    Raises _NoCodec for a compression tifffile decodes only with imagecodecs (LZW, JPEG...)."""
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[index]
        if page.compression != 1:
            try:
                tifffile.TIFF.DECOMPRESSORS[page.compression]
            except KeyError:
                raise _NoCodec(str(page.compression.name)) from None
        array = page.asarray()
        planar = page.planarconfig == 2 and page.samplesperpixel > 1
        extra = page.extrasamples[0] if page.extrasamples else None
    array = np.moveaxis(array, 0, -1) if planar else array
    return (array[:, :, None] if array.ndim == 2 else array), extra, planar


class _NoCodec(Exception):
    """tifffile cannot decode the page's compression without imagecodecs."""


def _unpremultiplied(array: np.ndarray, full: int) -> np.ndarray:
    """Colour premultiplied by its alpha (the last channel) divided back, rounded; 0 where alpha is 0."""
    alpha = array[..., -1:].astype(np.float64)
    colour = np.where(alpha > 0, array[..., :-1] * (full / np.maximum(alpha, 1)), 0)
    colour = np.clip(np.rint(colour), 0, full).astype(array.dtype)
    return np.concatenate([colour, array[..., -1:]], axis=2)


def _deep_colour(data: bytes, image: Image.Image) -> tuple[str, bool]:
    """A name such as "16-bit RGB PNG" for a colour or gray+alpha image with more bits per sample than the 8
    Pillow reads it at ("" for others: Pillow reads 16-bit gray at full depth itself, as I;16), and whether
    _full_depth can read it: PNG and TIFF do (TIFF with tifffile, OpenCV where tifffile lacks the codec);
    JPEG 2000 does not."""
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
    data: bytes, image: Image.Image, orientation: int | None, shallow: np.ndarray, deep: str, page: int = 0
) -> np.ndarray:
    """A 16-bit colour PNG, or page ``page`` of a TIFF, read again at full depth (uint16 HxWxC: RGB, RGBA
    or gray+alpha) and accepted only if its high bytes are exactly Pillow's 8-bit reading ``shallow``: same
    layout, orientation and channel order, so no difference between the two readers can pass unnoticed.
    CMYK is compared as stored, then made RGB as Pillow makes 8-bit CMYK; for associated alpha, which
    Pillow divides out at 8 bits, the alpha is compared and the colours divided out at 16. Separate colour
    planes, which Pillow reads wrongly when uncompressed, are tifffile's alone (its shape is checked)."""
    reader = _tiff_full_depth if image.format == "TIFF" else _opencv_full_depth
    try:
        array = reader(data, image, orientation, shallow, page)
    except _NoCodec:
        array = _opencv_full_depth(data, image, orientation, shallow, page)
    if array is not None:
        return np.ascontiguousarray(array)
    raise Unrestorable(f"{deep} could not be read at full depth; restoring it at 8 bits would lose precision")


def _tiff_full_depth(
    data: bytes, image: Image.Image, orientation: int | None, shallow: np.ndarray, page: int
) -> np.ndarray | None:
    array, extra, planar = _tifffile_array(data, page)
    if array.dtype != np.uint16:
        return None
    array = _UPRIGHT.get(orientation, lambda a: a)(array)  # tifffile leaves the orientation to its caller
    if image.mode == "CMYK":
        if array.shape[2] != 4 or not np.array_equal(array >> 8, np.asarray(image)):
            return None
        return _cmyk_to_rgb(array)
    if array.shape != shallow.shape:
        return None
    if planar:  # Pillow reads separate planes as if interleaved when uncompressed: nothing to compare
        return _unpremultiplied(array, 65535) if extra == 1 else array
    if extra == 1 and array.shape[2] in (2, 4):  # associated alpha
        if not np.array_equal(array[..., -1] >> 8, shallow[..., -1]):
            return None
        return _unpremultiplied(array, 65535)
    return array if np.array_equal(array >> 8, shallow) else None


def _cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """16-bit CMYK as 16-bit RGB by Pillow's formula for 8 bits, (full - C) * (full - K) / full: encode
    writes RGB back as CMYK (C = full - R, no K) as Pillow does, so both depths take the same way."""
    inverse = 65535 - cmyk.astype(np.uint64)
    rgb = (inverse[..., :3] * inverse[..., 3:] + 32767) // 65535
    return rgb.astype(np.uint16)


def _opencv_full_depth(
    data: bytes, image: Image.Image, orientation: int | None, shallow: np.ndarray, page: int
) -> np.ndarray | None:
    buffer = np.frombuffer(data, np.uint8)
    if page:
        ok, arrays = cv2.imdecodemulti(buffer, cv2.IMREAD_UNCHANGED, range=(page, page + 1))
        array = arrays[0] if ok and arrays else None
    else:
        array = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint16 or array.ndim != 3 or array.shape[2] not in (3, 4):
        return None
    array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) -> RGB(A)
    if image.format == "PNG":  # OpenCV turns a TIFF by its orientation itself, never a PNG by its EXIF
        array = _UPRIGHT.get(orientation, lambda a: a)(array)
    if array.shape != shallow.shape or not np.array_equal(array >> 8, shallow):
        return None
    gray_alpha = image.format == "PNG" and data[25] == 4  # both readers return it as RGBA
    return array[:, :, [0, 3]] if gray_alpha else array


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


def _tiff_layout(data: bytes, index: int = 0) -> str:
    """The reason for a TIFF whose pixels Pillow has no mode for (float RGB, 16-bit gray+alpha...): what
    its IFD (the first, or page ``index``'s) says they are."""
    try:
        ifd = TiffImagePlugin.ImageFileDirectory_v2(data[:16] if data[2] == 43 else data[:8])  # 43: BigTIFF
        fp = io.BytesIO(data)
        fp.seek(ifd.next)
        ifd.load(fp)
        for _ in range(index):
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
    """Of images other than TIFF (whose pages are all restored: _decode_tiff), only the first frame is
    restored, so an image with more fails rather than lose them. An MPO's extra pictures (a camera JPEG's
    previews) are no frames."""
    frames = getattr(image, "n_frames", 1)
    if frames > 1 and image.format != "MPO":
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


def _exif_bytes(exif: Image.Exif, had_orientation: bool) -> bytes:
    for tag in _NOT_EXIF:
        exif.pop(tag, None)
    if had_orientation:
        exif[_ORIENTATION] = 1  # the pixels are upright now
    # A BigTIFF's tags come with a BigTIFF header, which no EXIF reader (Pillow's own included) parses:
    # EXIF is always written in the classic layout, whatever the file it came from.
    exif.bigtiff = False
    return exif.tobytes() if len(exif) else b""
