"""The per-image stages of the restoration job, as stateless batch functions.

Each takes a batch in Ray Data's "numpy" format (a dict of equal-length numpy arrays; strings, bytes and
images are object arrays) and returns a new one, so Ray's ``map_batches`` can run them and tests can call
them on hand-built dicts. The job runs::

    manifest rows (id, uri) -> fetch -> decode -> restore (model actor) -> encode_and_write -> result rows

A row that fails anywhere gets a one-line reason in its ``error`` column ("" means ok, so the column stays
a plain string column); later stages pass it through untouched, and the job never stops for a bad row.
``elapsed_ms`` is a running per-row total: each stage adds the time it spent on that row (the restore
actor's share arrives as ``restore_ms``). Adding per-stage times, rather than subtracting a start time
taken in fetch, leaves out time spent queued between stages and cannot be skewed by clocks that differ
between nodes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import struct
import time
import warnings
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile, ImageOps, TiffImagePlugin, TiffTags, UnidentifiedImageError

from pipeline.batch.outputs import WRITERS, output_uri, written_format
from pipeline.formats import DECODE_FORMATS
from pipeline.manifest import RESULT_SCHEMA, one_line
from pipeline.storage import Storage, StorageError

Columns = dict[str, np.ndarray]  # one Ray Data batch in numpy format: column name -> values

IO_THREADS = 8  # concurrent reads or writes per batch; Storage retries transient errors itself

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


def fetch(batch: Columns, storage: Storage) -> Columns:
    """Read each row's ``uri``. Adds ``data`` (bytes; b"" when failed), ``input_etag`` (sha256 hex of the
    bytes, for every source: S3 ETags of multipart uploads are no content hash, local files have none),
    ``error`` and ``elapsed_ms``; other columns pass through. Reads run concurrently in a few threads."""
    uris = batch["uri"]

    def read(uri: str) -> tuple[bytes, str, float]:
        start = time.perf_counter()
        try:
            data = storage.read_bytes(uri)
            error = "" if data else "0-byte file"
        except (StorageError, OSError) as exc:
            data, error = b"", one_line(exc)
        return data, error, _ms_since(start)

    with ThreadPoolExecutor(max_workers=max(1, min(IO_THREADS, len(uris)))) as pool:
        rows = list(pool.map(read, uris))
    return {
        **batch,
        "data": _objects([data for data, _, _ in rows]),
        "input_etag": _objects([hashlib.sha256(data).hexdigest() if data else "" for data, _, _ in rows]),
        "error": _objects([error for _, error, _ in rows]),
        "elapsed_ms": np.array([ms for _, _, ms in rows], dtype=np.float64),
    }


@dataclass(frozen=True)
class _Decoded:
    pixels: np.ndarray
    format: str = ""
    mode: str = ""
    exif: bytes = b""
    icc: bytes = b""
    dpi: tuple[float, float] = (0.0, 0.0)
    error: str = ""


_PLACEHOLDER = np.zeros((0, 0, 0), np.uint8)  # a failed row's image: no bytes at all


def images_column(images: Sequence[np.ndarray]) -> np.ndarray:
    """Images as a column of raw bytes (C order, native byte order); ``image_at`` reads them back.

    Images never travel as Ray tensor columns: Ray concatenates the outputs of several batches into one block
    whenever scheduling makes it so, and tensor columns of different dtypes (an 8-bit and a 16-bit image)
    cannot be concatenated, which failed the whole job. A bytes column always can."""
    return _objects([np.ascontiguousarray(image).tobytes() for image in images])


def image_at(batch: Columns, i: int, column: str = "pixels") -> np.ndarray:
    """Row ``i`` of an images column as HxWxC: uint16 where ``bit_depth`` is 16, else uint8, with the row's
    ``height``, ``width`` and ``channels`` (all 0 for a failed row). Read-only: it is a view of the bytes."""
    dtype = np.dtype(np.uint16 if int(batch["bit_depth"][i]) == 16 else np.uint8)
    shape = (int(batch["height"][i]), int(batch["width"][i]), int(batch["channels"][i]))
    data = batch[column][i]
    if len(data) != shape[0] * shape[1] * shape[2] * dtype.itemsize:
        raise ValueError(
            f"{column} holds {len(data)} bytes, not a {'x'.join(map(str, shape))} image of {dtype.name}"
        )
    return np.frombuffer(data, dtype).reshape(shape)


def decode(batch: Columns, max_pixels: int) -> Columns:
    """Decode fetch's ``data`` (dropped from the output) into ``pixels``, an images column (``image_at`` reads
    row i as HxWxC, C = 1, 2, 3 or 4 for L, LA, RGB, RGBA, uint8 (0..255) or, for 16-bit and 32-bit
    inputs, uint16 (0..65535)), with ``channels`` and ``bit_depth`` (8 or 16).

    Also adds ``format`` (Pillow's: JPEG, PNG, TIFF...), ``mode`` (the file's Pillow mode), ``exif`` and
    ``icc`` (bytes, b"" if none), ``dpi_x``/``dpi_y`` (0.0 if unknown) and ``width``/``height``. Reads
    DECODE_FORMATS; other files fail as "not an image", files that start as one of them but are damaged
    as "truncated or corrupt image: <the reader's reason>", and TIFFs whose pixels Pillow has no mode for
    (float RGB, 16-bit gray+alpha...) as "unsupported TIFF pixel layout: <what the TIFF says>". EXIF
    orientation is applied to the pixels, width, height and dpi, and the orientation tag left in ``exif``
    is 1. Images over ``max_pixels`` fail from their header, before any pixel is decoded. Only
    single-frame images are restored: multi-page TIFFs and animated GIF, PNG and WebP fail with their frame
    count (previews are no frames: a camera MPO's extra pictures, a TIFF's reduced-resolution pages).
    Failed rows get no pixel bytes, "" and zeros.

    Modes: 1 -> L; P and others -> RGBA with transparency or alpha, else RGB; CMYK, YCbCr, LAB, HSV -> RGB
    (encode_and_write turns RGB back into CMYK for CMYK inputs); I;16* and I -> uint16 (I with values
    outside 0..65535 fails: clipping would lose data).

    F (32-bit float gray) has no standard range, so the data decides: all values in 0..1, the convention
    of scientific TIFFs -> uint16 (v * 65535, rounded, so 0..1 keeps 16 bits of its precision); otherwise
    0..255 is assumed -> rounded to uint8 (an image in 0..255 whose values all happen to lie in 0..1 is
    nearly black and comes out scaled up). Values outside 0..255, NaN or infinity fail the row.

    16-bit colour, which Pillow reads as 8-bit RGB or RGBA (16 bits per sample in the PNG header or the
    TIFF's BitsPerSample): RGB, RGBA and gray+alpha PNG and interleaved RGB and RGBA TIFF are read again
    by OpenCV -> uint16 RGB, RGBA, LA (gray+alpha), and kept only if their high bytes are exactly Pillow's
    pixels; any other (16-bit CMYK TIFF, separate colour planes, JPEG 2000 over 8 bits) fails with its
    reason rather than be restored at 8 bits."""
    rows: list[_Decoded] = []
    elapsed = batch["elapsed_ms"].copy()
    for i, (data, error) in enumerate(zip(batch["data"], batch["error"], strict=True)):
        start = time.perf_counter()
        rows.append(_decode_one(data, max_pixels) if not error else _Decoded(_PLACEHOLDER, error=error))
        elapsed[i] += _ms_since(start)
    return {
        **{name: column for name, column in batch.items() if name != "data"},
        "pixels": images_column([row.pixels for row in rows]),
        "channels": np.array([row.pixels.shape[2] for row in rows], dtype=np.int32),
        "bit_depth": np.array([16 if row.pixels.dtype == np.uint16 else 8 for row in rows], dtype=np.int32),
        "format": _objects([row.format for row in rows]),
        "mode": _objects([row.mode for row in rows]),
        "exif": _objects([row.exif for row in rows]),
        "icc": _objects([row.icc for row in rows]),
        "dpi_x": np.array([row.dpi[0] for row in rows], dtype=np.float64),
        "dpi_y": np.array([row.dpi[1] for row in rows], dtype=np.float64),
        "width": np.array([row.pixels.shape[1] for row in rows], dtype=np.int32),
        "height": np.array([row.pixels.shape[0] for row in rows], dtype=np.int32),
        "error": _objects([row.error for row in rows]),
        "elapsed_ms": elapsed,
    }


def encode_and_write(
    batch: Columns, output_prefix: str, output_format: str, storage: Storage, model_id: str
) -> Columns:
    """Encode each ok row's ``restored`` pixels (decode's layout, read by ``bit_depth``) and write them
    atomically to output_uri(...); return exactly the RESULT_SCHEMA columns, in its order.

    ``output_format`` is "same" (the input's; GIF, BMP and other formats are written as lossless PNG, since
    a GIF palette would undo a restoration) or png, jpeg, tiff, webp. EXIF, ICC profile (when its colour
    space fits the written mode), DPI (not in WebP) and alpha are kept. JPEG has no alpha, so it is dropped
    (not composited); 16-bit images become 8-bit in JPEG and WebP and stay 16-bit in PNG and TIFF (16-bit
    gray+alpha is written to TIFF as RGBA, gray in all three: neither Pillow nor OpenCV reads it back as
    gray+alpha); CMYK inputs are written as CMYK in JPEG and TIFF. ``error`` is "" for ok rows and
    ``output_uri`` "" for failed ones; width, height and defect_coverage are 0 for failed rows. Writes run
    concurrently in a few threads."""
    written_format("", output_format)  # a bad option fails the job once, not every row

    def write(i: int) -> tuple[str, str, str, float]:
        start = time.perf_counter()
        uri, error, fmt = batch["uri"][i], batch["error"][i], batch["format"][i]
        if error:
            return "", error, "", 0.0
        written = written_format(fmt, output_format)
        try:
            target = output_uri(uri, output_prefix, fmt, output_format)
        except ValueError as exc:  # the output would be the input itself, or outside the output prefix
            return "", str(exc), "", 0.0
        try:
            restored = image_at(batch, i, "restored")
            dpi = (batch["dpi_x"][i], batch["dpi_y"][i])
            data = _encode(restored, batch["mode"][i], written, batch["exif"][i], batch["icc"][i], dpi)
        except Exception as exc:  # one odd image (EXIF too long for JPEG, ...) must not stop the job
            return "", f"could not encode as {written}: {one_line(exc)}", "", _ms_since(start)
        try:
            storage.write_bytes(target, data, WRITERS[written][1])
        except (StorageError, OSError) as exc:
            return "", one_line(exc), "", _ms_since(start)
        return target, "", hashlib.sha256(data).hexdigest(), _ms_since(start)

    with ThreadPoolExecutor(max_workers=max(1, min(IO_THREADS, len(batch["uri"])))) as pool:
        results = list(pool.map(write, range(len(batch["uri"]))))
    ok = np.array([not error for _, error, _, _ in results], dtype=bool)
    n = len(results)
    out = {
        "id": batch["id"],
        "uri": batch["uri"],
        "output_uri": _objects([uri for uri, _, _, _ in results]),
        "status": _objects(["ok" if good else "failed" for good in ok]),
        "error": _objects([error for _, error, _, _ in results]),
        "width": np.where(ok, batch["width"], 0).astype(np.int32),
        "height": np.where(ok, batch["height"], 0).astype(np.int32),
        "input_etag": batch["input_etag"],
        "output_sha256": _objects([sha for _, _, sha, _ in results]),
        "model_id": _objects([model_id] * n),
        "elapsed_ms": batch["elapsed_ms"] + batch["restore_ms"] + np.array([ms for *_, ms in results]),
        "defect_coverage": np.where(ok, batch["defect_coverage"], 0).astype(np.float32),
    }
    return {name: out[name] for name in RESULT_SCHEMA.names}


# -- decoding --------------------------------------------------------------------------------------------


class _Unrestorable(Exception):
    """An image that cannot be restored as it is; its message is the row's whole reason."""


def _decode_one(data: bytes, max_pixels: int) -> _Decoded:
    try:
        return _decode_image(data, max_pixels)
    except _Unrestorable as exc:
        error = str(exc)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        error = f"{one_line(exc)} (raise --max-pixels)"
    except Exception as exc:  # corrupt files make Pillow raise almost anything (OSError, ValueError, ...)
        error = f"truncated or corrupt image: {one_line(exc)}"
    return _Decoded(_PLACEHOLDER, error=error)


def _decode_image(data: bytes, max_pixels: int) -> _Decoded:
    # Pillow's own pixel limit is off while reading the header: the test below is the same one, against
    # the job's limit, with a message that gives the size.
    with _pillow_guard(pixel_limit=None):
        try:
            image = Image.open(io.BytesIO(data), formats=DECODE_FORMATS)
        except UnidentifiedImageError:
            raise _Unrestorable(_unidentified(data)) from None
    width, height = image.size
    if width * height > max_pixels:
        raise Image.DecompressionBombError(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of {max_pixels:,}"
        )
    _refuse_extra_frames(image)
    deep, readable = _deep_colour(data, image)
    if deep and not readable:
        raise _Unrestorable(f"{deep} is not supported; restoring it at 8 bits would lose precision")
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
    return _Decoded(
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
    raise _Unrestorable(
        f"{deep} could not be read at full depth; restoring it at 8 bits would lose precision"
    )


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
        raise _Unrestorable(f"{kind}; only single-frame images are restored")


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
        raise _Unrestorable("float image has NaN or infinite values; only finite values can be restored")
    if values.min() >= 0 and values.max() <= 1:
        return np.rint(values * 65535).astype(np.uint16)
    return np.rint(_in_range(values, 0, 255, "float")).astype(np.uint8)


def _in_range(values: np.ndarray, low: float, high: float, kind: str) -> np.ndarray:
    """``values`` if all lie in low..high; otherwise the row fails: clipping would lose data silently."""
    if values.size and (values.min() < low or values.max() > high):
        raise _Unrestorable(
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
    return exif.tobytes() if len(exif) else b""


# -- encoding --------------------------------------------------------------------------------------------


def _encode(
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


def _tiff(pixels: np.ndarray, mode: str, exif: bytes, icc: bytes, dpi: tuple[float, float] | None) -> bytes:
    """``pixels`` (HxW or HxWxC, uint8 or uint16, laid out as Pillow's ``mode``) as a TIFF of deflate
    strips, put together here around Pillow's IFD writer: Pillow's TIFF writer compresses through libtiff,
    which cannot write EXIF sub-IFDs (a camera JPEG's EXIF always has one: the whole save failed)."""
    samples = pixels.reshape(pixels.shape[0], pixels.shape[1], -1).astype(
        pixels.dtype.newbyteorder("<"), copy=False
    )
    height, width, channels = samples.shape
    rows = max(1, min(height, _TIFF_STRIP_BYTES // max(1, samples[0].nbytes)))
    strips = [zlib.compress(samples[y : y + rows].tobytes()) for y in range(0, height, rows)]
    ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix=b"II")
    for tag, value in _exif_tags(exif).items():
        ifd[tag] = value
    ifd.tagtype[TiffImagePlugin.STRIPOFFSETS] = ifd.tagtype[TiffImagePlugin.STRIPBYTECOUNTS] = TiffTags.LONG
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
    if buffer.tell() >= 2**32:
        raise ValueError(f"{buffer.tell():,} bytes, over the 4 GiB a TIFF can hold; choose another format")
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


# -- helpers ---------------------------------------------------------------------------------------------


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object column; np.array would stack equal-shaped arrays into one N-D array."""
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000
