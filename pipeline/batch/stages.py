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

import hashlib
import io
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from PIL import Image

from pipeline.batch.decoding import PLACEHOLDER, Decoded, decode_one
from pipeline.batch.encoding import encode
from pipeline.batch.outputs import WRITERS, mask_uri, output_uri, written_format
from pipeline.manifest import RESULT_SCHEMA, one_line
from pipeline.storage import Storage, StorageError

Columns = dict[str, np.ndarray]  # one Ray Data batch in numpy format: column name -> values

IO_THREADS = 8  # concurrent reads or writes per batch; Storage retries transient errors itself


# An image file within the pixel limit is at most its raw pixels (16-bit RGBA: 8 bytes a pixel) plus previews
# and metadata; anything larger is not read into memory (a mislabelled dump, /dev/zero through a link).
BYTES_PER_PIXEL_CAP = 16
METADATA_BYTES_CAP = 64 << 20


def byte_cap(max_pixels: int | None) -> int | None:
    """The most bytes fetch reads for one image under ``max_pixels`` (None: no cap)."""
    return None if max_pixels is None else max_pixels * BYTES_PER_PIXEL_CAP + METADATA_BYTES_CAP


def fetch(batch: Columns, storage: Storage, max_pixels: int | None = None) -> Columns:
    """Read each row's ``uri``. Adds ``data`` (bytes; b"" when failed), ``input_etag`` (sha256 hex of the
    bytes, for every source: S3 ETags of multipart uploads are no content hash, local files have none),
    ``error`` and ``elapsed_ms``; other columns pass through. Reads run concurrently in a few threads.
    Only regular files are read, each up to ``byte_cap(max_pixels)``; others fail their row."""
    uris = batch["uri"]
    max_bytes = byte_cap(max_pixels)

    def read(uri: str) -> tuple[bytes, str, float]:
        start = time.perf_counter()
        try:
            data = storage.read_bytes(uri, max_bytes)
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


def pages_column(rows: Sequence[Sequence[Decoded]]) -> np.ndarray:
    """Each row's pages after the first (a multi-page TIFF's; b"" for others) as one bytes value: their
    pixels and metadata in an .npz, which keeps every page's own dtype and shape. Bytes, for the reason
    images_column gives; ``pages_at`` reads them back."""
    values = []
    for pages in rows:
        arrays: dict[str, np.ndarray] = {}
        for k, page in enumerate(pages):
            arrays |= {
                f"{k}.pixels": page.pixels,
                f"{k}.mode": np.array(page.mode),
                f"{k}.exif": np.frombuffer(page.exif, np.uint8),
                f"{k}.icc": np.frombuffer(page.icc, np.uint8),
                f"{k}.dpi": np.array(page.dpi, np.float64),
            }
        buffer = io.BytesIO()
        if arrays:
            np.savez(buffer, **arrays)
        values.append(buffer.getvalue())
    return _objects(values)


def pages_at(batch: Columns, i: int, column: str = "more_pages") -> list[Decoded]:
    """Row ``i``'s pages after the first, as ``pages_column`` packed them ([] for a one-page row)."""
    data = batch[column][i] if column in batch else b""
    if not len(data):
        return []
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return [
            Decoded(
                arrays[f"{k}.pixels"],
                mode=str(arrays[f"{k}.mode"]),
                exif=arrays[f"{k}.exif"].tobytes(),
                icc=arrays[f"{k}.icc"].tobytes(),
                dpi=tuple(arrays[f"{k}.dpi"].tolist()),
            )
            for k in range(sum(name.endswith(".pixels") for name in arrays.files))
        ]


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
    is 1. Images over ``max_pixels`` fail from their header, before any pixel is decoded. Animated GIF,
    PNG and WebP fail with their frame count (a camera MPO's extra pictures are previews, no frames);
    multi-page TIFFs are restored page by page (below). Failed rows get no pixel bytes, "" and zeros.

    Modes: 1 -> L; P and others -> RGBA with transparency or alpha, else RGB; CMYK, YCbCr, LAB, HSV -> RGB
    (encode_and_write turns RGB back into CMYK for CMYK inputs); I;16* and I -> uint16 (I with values
    outside 0..65535 fails: clipping would lose data).

    F (32-bit float gray) has no standard range, so the data decides: all values in 0..1, the convention
    of scientific TIFFs -> uint16 (v * 65535, rounded, so 0..1 keeps 16 bits of its precision); otherwise
    0..255 is assumed -> rounded to uint8 (an image in 0..255 whose values all happen to lie in 0..1 is
    nearly black and comes out scaled up). Values outside 0..255, NaN or infinity fail the row.

    16-bit colour, which Pillow reads as 8-bit RGB or RGBA (16 bits per sample in the PNG header or the
    TIFF's BitsPerSample): RGB, RGBA and gray+alpha PNG are read again by OpenCV, and RGB, RGBA and CMYK
    TIFF (interleaved or in separate colour planes) by tifffile (OpenCV where tifffile lacks the codec, as
    for LZW) -> uint16 RGB, RGBA, LA (gray+alpha), kept only if their high bytes are exactly Pillow's
    pixels (see decoding._full_depth for the exceptions). 16-bit CMYK becomes 16-bit RGB by Pillow's own
    8-bit formula, and is written back as CMYK like 8-bit CMYK; associated (premultiplied) alpha is divided
    out, as Pillow does at 8 bits, and written unassociated. Any other (JPEG 2000 over 8 bits, extra
    samples that are not alpha) fails with its reason rather than be restored at 8 bits.

    TIFF samples of 32 bits unsigned (gray, gray+alpha, RGB, RGBA), which have a full scale as 8 and 16
    bits do, are scaled to uint16 (v * 65535 / (2**32 - 1), rounded): the restoration keeps no more (the
    model computes in float32, outputs are 8 or 16 bits). Signed 32-bit gray (Pillow's own I) has none,
    so it keeps the rule above; other TIFF layouts (float colour, signed colour...) fail as unsupported.

    Every page of a multi-page TIFF is restored, each at its own size, depth and metadata: ``pages`` says
    how many (1 for every other image, 0 for failed rows), and ``more_pages`` (``pages_at``) holds those
    after the first, whose own values are the columns above. Reduced-resolution pages (NewSubfileType bit
    0: a scanner's preview or thumbnail) are no pages: a preview of the unrestored scan would misrepresent
    the restoration, so they are left out of the output. ``max_pixels`` bounds the sum of the pages, since
    a row holds them all at once. ``bigtiff`` is True for a BigTIFF input, so a TIFF output is one too. A
    later page's failure fails the row, naming the page ("page 2 of 3: ...")."""
    rows: list[Decoded] = []
    elapsed = batch["elapsed_ms"].copy()
    for i, (data, error) in enumerate(zip(batch["data"], batch["error"], strict=True)):
        start = time.perf_counter()
        rows.append(decode_one(data, max_pixels) if not error else Decoded(PLACEHOLDER, error=error))
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
        "pages": np.array([(1 + len(row.more_pages)) * (not row.error) for row in rows], dtype=np.int32),
        "more_pages": pages_column([row.more_pages for row in rows]),
        "bigtiff": np.array([row.bigtiff for row in rows], dtype=bool),
    }


def read_images(ds: Any, storage: Storage, max_pixels: int) -> Any:
    """fetch -> decode as Ray tasks over a ``ray.data.Dataset``, one call per block: the archive job's GPU
    path, and training's clean photos (pipeline/training/data.py). Fetching is I/O bound, so its tasks
    reserve a quarter CPU and many run at once (that also keeps Ray from fusing it into the decode tasks).
    Here, beside the stages, so training chains them without importing the job's driver and its models."""
    ds = ds.map_batches(
        fetch,
        fn_kwargs={"storage": storage, "max_pixels": max_pixels},
        batch_size=None,
        batch_format="numpy",
        num_cpus=0.25,
    )
    return ds.map_batches(decode, fn_kwargs={"max_pixels": max_pixels}, batch_size=None, batch_format="numpy")


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
    gray+alpha); CMYK inputs are written as CMYK in JPEG and TIFF. A multi-page TIFF (``more_restored``,
    as ``pages_at`` reads it) is written as one multi-page TIFF, each page with its own depth, size and
    tags; in any other output format its row fails ("multi-page TIFF (3 pages) can only be written as
    TIFF..."), since those formats hold one picture and dropping pages would lose them. A TIFF output is a
    BigTIFF when the input was (``bigtiff``) or when it passes 4 GiB. ``error`` is "" for ok rows and
    ``output_uri`` "" for failed ones; width, height (the first page's), pages and defect_coverage are 0
    for failed rows. Writes run concurrently in a few threads."""
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
        more = pages_at(batch, i, "more_restored")
        if more and written != "TIFF":
            return "", _only_tiff(len(more) + 1, output_format), "", 0.0
        try:
            restored = image_at(batch, i, "restored")
            dpi = (batch["dpi_x"][i], batch["dpi_y"][i])
            bigtiff = bool(batch["bigtiff"][i]) if "bigtiff" in batch else False
            data = encode(
                restored, batch["mode"][i], written, batch["exif"][i], batch["icc"][i], dpi, bigtiff, more
            )
        except Exception as exc:  # one odd image (EXIF too long for JPEG, ...) must not stop the job
            return "", f"could not encode as {written}: {one_line(exc)}", "", _ms_since(start)
        try:
            storage.write_bytes(target, data, WRITERS[written][1])
            if "defect_mask" in batch and len(batch["defect_mask"][i]):  # --masks: beside the output
                storage.write_bytes(mask_uri(target), _mask_png(batch, i), "image/png")
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
        "pages": np.where(ok, batch.get("pages", 1), 0).astype(np.int32),  # hand-built batches: 1 page
        # Null for failed rows too: a correction never written is not one to undo.
        "tone": _objects(
            [t if good and t else None for t, good in zip(batch.get("tone", [""] * n), ok, strict=True)]
        ),  # a hand-built batch may have no tone column: nothing was corrected
    }
    return {name: out[name] for name in RESULT_SCHEMA.names}


# -- helpers ---------------------------------------------------------------------------------------------


def _only_tiff(pages: int, output_format: str) -> str:
    return (
        f"multi-page TIFF ({pages} pages) can only be written as TIFF, not {output_format}; "
        "restore it with --format same or tiff"
    )


def _mask_png(batch: Columns, i: int) -> bytes:
    """Row ``i``'s defect mask (H, W) uint8, 0 = kept, 255 = repaired, as an 8-bit grey PNG."""
    shape = (int(batch["height"][i]), int(batch["width"][i]))
    mask = np.frombuffer(batch["defect_mask"][i], np.uint8).reshape(shape)
    buffer = io.BytesIO()
    Image.fromarray(mask, "L").save(buffer, "PNG", optimize=False, compress_level=6)
    return buffer.getvalue()


def _objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-D object column; np.array would stack equal-shaped arrays into one N-D array."""
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000
