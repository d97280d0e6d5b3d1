"""The batch stages called directly on hand-built batches (no Ray cluster): real files, real S3 via moto."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image, ImageCms, ImageFile, ImageOps
from skimage import data
from stage_batches import column, manifest, restore

from pipeline.batch.stages import decode, encode_and_write, fetch, image_at
from pipeline.manifest import RESULT_SCHEMA, read_results, write_result_part
from pipeline.storage import Storage

MODEL = "patina-test-v1"
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
MAKE = 0x010F


def photo(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Real photo content (skimage's astronaut), small so the file runs in seconds."""
    image = Image.fromarray(data.astronaut()).resize(size, Image.Resampling.BILINEAR)
    if mode == "RGBA":
        alpha = np.linspace(0, 255, size[0] * size[1]).reshape(size[1], size[0]).astype(np.uint8)
        image.putalpha(Image.fromarray(alpha))
        return image
    if mode == "I;16":  # 16-bit gray using the full range, so values above 255 occur
        return Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    if mode == "P+transparency":
        image = image.quantize(16)
        image.info["transparency"] = 0
        return image
    return image.convert(mode)


def exif_with(orientation: int | None = None) -> bytes:
    exif = Image.Exif()
    exif[MAKE] = "Patina Test Camera"
    if orientation is not None:
        exif[0x0112] = orientation
    return exif.tobytes()


def run(uris: list[str], storage: Storage, prefix: str, output_format: str = "same", max_pixels: int = 10**6):
    decoded = decode(fetch(manifest(uris), storage), max_pixels)
    return decoded, encode_and_write(restore(decoded), prefix, output_format, storage, MODEL)


def reopen(uri: str, storage: Storage) -> dict:
    """One output decoded by the stages themselves, as a dict of that row's values."""
    batch = decode(fetch(manifest([uri]), storage), 10**6)
    assert batch["error"][0] == ""
    return {**{name: values[0] for name, values in batch.items()}, "pixels": image_at(batch, 0)}


def save(path: Path, image: Image.Image, **options) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)
    return str(path)


def test_jpeg_round_trip_applies_orientation_and_keeps_exif_icc_dpi(tmp_path):
    storage = Storage()
    src = save(tmp_path / "in" / "portrait.jpg", photo(), exif=exif_with(6), icc_profile=SRGB, dpi=(300, 200))
    prefix = str(tmp_path / "out")

    decoded, result = run([src], storage, prefix)

    pixels = image_at(decoded, 0)
    with Image.open(src) as upright:
        expected = np.asarray(ImageOps.exif_transpose(upright))
    assert pixels.shape == (64, 48, 3) and pixels.dtype == np.uint8 and pixels.flags.c_contiguous
    np.testing.assert_array_equal(pixels, expected)
    assert (decoded["width"][0], decoded["height"][0]) == (48, 64)
    assert (decoded["dpi_x"][0], decoded["dpi_y"][0]) == (200.0, 300.0)  # swapped with the rotation
    assert (decoded["format"][0], decoded["mode"][0], decoded["bit_depth"][0]) == ("JPEG", "RGB", 8)
    assert "data" not in decoded

    assert list(result) == RESULT_SCHEMA.names
    row = {name: values[0] for name, values in result.items()}
    written = storage.read_bytes(row["output_uri"])
    assert row["output_uri"] == os.path.join(prefix, os.path.realpath(src).lstrip("/"))
    assert (row["status"], row["error"], row["width"], row["height"]) == ("ok", "", 48, 64)
    assert row["output_sha256"] == hashlib.sha256(written).hexdigest()
    assert row["input_etag"] == hashlib.sha256(Path(src).read_bytes()).hexdigest()
    assert (row["model_id"], row["defect_coverage"]) == (MODEL, np.float32(0.25))
    assert row["elapsed_ms"] > 2.0  # includes the actor's restore_ms

    out = reopen(row["output_uri"], storage)
    exif = Image.Exif()
    exif.load(out["exif"])
    assert (exif[0x0112], exif[MAKE]) == (1, "Patina Test Camera")
    assert out["icc"] == SRGB
    assert (out["dpi_x"], out["dpi_y"]) == (200.0, 300.0)
    assert out["pixels"].shape == (64, 48, 3)  # upright, not turned a second time
    assert np.abs(out["pixels"].astype(int) - pixels).mean() < 2  # quality 95, 4:4:4

    part = write_result_part(str(tmp_path / "results"), pa.table(result), storage)
    assert storage.exists(part)
    assert read_results(str(tmp_path / "results"), storage)["status"].to_pylist() == ["ok"]


@pytest.mark.parametrize(
    ("name", "output_format", "dpi"),
    [
        ("scan.tif", "same", (300, 600)),
        ("scan.tif", "jpeg", (300, 600)),
        ("a.png", "same", (300, 600)),
        ("w.webp", "same", (0, 0)),
    ],
)
def test_metadata_survives_each_format(tmp_path, name, output_format, dpi):
    """Orientation 8 is applied (and reset to 1), EXIF and ICC kept, DPI kept where the format has it."""
    storage = Storage()
    src = save(tmp_path / "in" / name, photo(), exif=exif_with(8), icc_profile=SRGB, dpi=(600, 300))

    decoded, result = run([src], storage, str(tmp_path / "out"), output_format=output_format)

    out = reopen(result["output_uri"][0], storage)
    for row in (
        {**{name: values[0] for name, values in decoded.items()}, "pixels": image_at(decoded, 0)},
        out,
    ):
        exif = Image.Exif()
        exif.load(row["exif"])
        assert dict(exif) == {0x0112: 1, MAKE: "Patina Test Camera"}  # a TIFF's layout tags are not EXIF
        assert row["icc"] == SRGB and row["pixels"].shape == (64, 48, 3)
        assert (row["dpi_x"], row["dpi_y"]) == pytest.approx(dpi, abs=0.01)


@pytest.mark.parametrize(
    ("name", "mode", "options", "channels", "bit_depth", "output_name", "output_mode"),
    [
        ("rgba.png", "RGBA", {}, 4, 8, "rgba.png", "RGBA"),
        ("gray.png", "L", {}, 1, 8, "gray.png", "L"),
        ("gray16.png", "I;16", {}, 1, 16, "gray16.png", "I;16"),
        ("palette.png", "P+transparency", {}, 4, 8, "palette.png", "RGBA"),
        ("scan.tif", "RGB", {"compression": "tiff_lzw"}, 3, 8, "scan.tif", "RGB"),
        ("press.tif", "CMYK", {}, 3, 8, "press.tif", "CMYK"),
        ("web.webp", "RGB", {"quality": 80}, 3, 8, "web.webp", "RGB"),
        ("anim.gif", "RGB", {}, 3, 8, "anim.gif.png", "RGB"),
        ("old.bmp", "RGB", {}, 3, 8, "old.bmp.png", "RGB"),
    ],
)
def test_lossless_round_trip(tmp_path, name, mode, options, channels, bit_depth, output_name, output_mode):
    storage = Storage()
    src = save(tmp_path / "in" / name, photo(mode), **options)
    original = Path(src).read_bytes()

    decoded, result = run([src], storage, str(tmp_path / "out"))

    pixels = image_at(decoded, 0)
    assert pixels.shape == (48, 64, channels) and decoded["bit_depth"][0] == bit_depth
    assert pixels.dtype == (np.uint16 if bit_depth == 16 else np.uint8) and pixels.flags.c_contiguous
    assert result["status"][0] == "ok", result["error"][0]
    assert os.path.basename(result["output_uri"][0]) == output_name
    with Image.open(result["output_uri"][0]) as image:
        assert image.mode == output_mode
    np.testing.assert_array_equal(reopen(result["output_uri"][0], storage)["pixels"], pixels)
    assert Path(src).read_bytes() == original
    if mode == "I;16":
        assert pixels.max() > 255
    if mode == "RGBA":
        np.testing.assert_array_equal(pixels[:, :, 3], np.asarray(Image.open(src))[:, :, 3])


def test_cmyk_jpeg_is_written_back_as_cmyk(tmp_path):
    storage = Storage()
    src = save(tmp_path / "press.jpg", photo("CMYK"), quality=95)

    decoded, result = run([src], storage, str(tmp_path / "out"))

    assert (decoded["mode"][0], image_at(decoded, 0).shape) == ("CMYK", (48, 64, 3))
    with Image.open(result["output_uri"][0]) as image:
        assert (image.format, image.mode) == ("JPEG", "CMYK")
    out = reopen(result["output_uri"][0], storage)["pixels"]
    assert np.abs(out.astype(int) - image_at(decoded, 0)).mean() < 3


def test_format_override_appends_extension_and_keeps_metadata(tmp_path):
    storage = Storage()
    src = save(tmp_path / "in" / "photo.jpg", photo(), exif=exif_with(), icc_profile=SRGB, dpi=(300, 300))

    decoded, result = run([src], storage, str(tmp_path / "out"), output_format="png")

    assert result["output_uri"][0].endswith("/photo.jpg.png")
    out = reopen(result["output_uri"][0], storage)
    assert (out["format"], out["icc"]) == ("PNG", SRGB)
    assert (out["dpi_x"], out["dpi_y"]) == pytest.approx((300, 300), abs=0.01)  # PNG stores dots per metre
    exif = Image.Exif()
    exif.load(out["exif"])
    assert exif[MAKE] == "Patina Test Camera"
    np.testing.assert_array_equal(out["pixels"], image_at(decoded, 0))


def test_jpeg_output_drops_alpha_and_reduces_16_bit_to_8(tmp_path):
    storage = Storage()
    rgba = save(tmp_path / "rgba.png", photo("RGBA"))
    deep = save(tmp_path / "deep.png", photo("I;16"))

    decoded, result = run([rgba, deep], storage, str(tmp_path / "out"), output_format="jpeg")

    assert list(result["status"]) == ["ok", "ok"]
    rgb, gray = (reopen(uri, storage)["pixels"] for uri in result["output_uri"])
    assert rgb.shape == (48, 64, 3) and gray.shape == (48, 64, 1) and gray.dtype == np.uint8
    assert np.abs(rgb.astype(int) - image_at(decoded, 0)[:, :, :3]).mean() < 3
    assert np.abs(gray.astype(int) - image_at(decoded, 1) / 257).mean() < 2


@pytest.mark.parametrize(
    ("mode", "values", "expected"),
    [
        ("1", [0, 1], [0, 255]),
        ("I", [0, 300, 65_535], [0, 300, 65535]),
        ("F", [0.0, 100.6, 255.0], [0, 101, 255]),
        ("I;16B", [7, 40_000], [7, 40_000]),
    ],
)
def test_decode_maps_numeric_modes(tmp_path, mode, values, expected):
    image = Image.new(mode, (len(values), 1))
    image.putdata(values)
    src = save(tmp_path / "numeric.tif", image)

    decoded = decode(fetch(manifest([src]), Storage()), 10**6)

    pixels = image_at(decoded, 0)
    assert decoded["mode"][0] == mode and pixels.shape == (1, len(values), 1)
    assert pixels.dtype == (np.uint8 if mode in ("1", "F") else np.uint16)
    assert pixels.ravel().tolist() == expected


@pytest.mark.parametrize(
    ("mode", "values", "reason"),
    [
        (
            "I",
            [-5, 300, 70_000],
            "32-bit integer values -5..70000 fall outside 0..65535; clipping them would",
        ),
        ("F", [-3.25, 100.5, 300.0], "float values -3.25..300 fall outside 0..255; clipping them would lose"),
    ],
)
def test_decode_fails_numeric_values_it_would_have_to_clip(tmp_path, mode, values, reason):
    image = Image.new(mode, (len(values), 1))
    image.putdata(values)
    decoded = decode(fetch(manifest([save(tmp_path / "numeric.tif", image)]), Storage()), 10**6)
    assert decoded["error"][0].startswith(reason)


@pytest.mark.parametrize(("mode", "channels"), [("LA", 2), ("YCbCr", 3), ("LAB", 3), ("P", 3), ("PA", 4)])
def test_decode_maps_colour_modes(tmp_path, mode, channels):
    src = save(tmp_path / "colour.tif", photo(mode))

    decoded = decode(fetch(manifest([src]), Storage()), 10**6)

    assert decoded["error"][0] == "" and image_at(decoded, 0).shape == (48, 64, channels)


def test_bad_rows_fail_with_their_reason_and_spare_the_rest(tmp_path, s3_server, bucket, monkeypatch):
    storage = s3_server.storage()
    client = s3_server.client()
    good_local = save(tmp_path / "good.jpg", photo())
    png = io.BytesIO()
    photo().save(png, "PNG")
    client.put_object(Bucket=bucket, Key="in/good.png", Body=png.getvalue())
    jpeg = Path(good_local).read_bytes()
    bad = {
        "empty.jpg": b"",
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "noise.jpg": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "notes.txt": b"not a photo, just some notes\n",
        "drawing.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",  # Pillow would run Ghostscript
    }
    for name, body in bad.items():
        (tmp_path / name).write_bytes(body)
    huge = save(tmp_path / "huge.png", photo(size=(100, 100)))
    uris = [
        good_local,
        f"s3://{bucket}/in/good.png",
        str(tmp_path / "missing.jpg"),
        f"s3://{bucket}/in/missing.jpg",
        *(str(tmp_path / name) for name in bad),
        huge,
    ]
    # A caller's lenient Pillow settings must not let a truncated JPEG through, and must survive decode.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    limit = Image.MAX_IMAGE_PIXELS

    _, result = run(uris, storage, f"s3://{bucket}/out", max_pixels=64 * 48)

    errors = list(result["error"])
    assert list(result["status"]) == ["ok", "ok"] + ["failed"] * 8
    assert errors[:2] == ["", ""]
    assert errors[2] == f"{tmp_path / 'missing.jpg'}: not found; check the path"
    assert errors[3] == f"s3://{bucket}/in/missing.jpg: not found; check the key or prefix"
    assert errors[4] == "0-byte file"
    assert errors[5].startswith("truncated or corrupt image: image file is truncated")
    assert errors[6:9] == ["not an image (unrecognised format)"] * 3
    assert errors[9] == "image is 100x100 = 10,000 pixels, over the limit of 3,072 (raise --max-pixels)"
    assert list(result["output_uri"][2:]) == [""] * 8
    assert list(result["width"][2:]) == [0] * 8
    assert list(result["input_etag"][2:5]) == ["", "", ""]  # nothing was read
    assert result["input_etag"][5] == hashlib.sha256(bad["truncated.jpg"]).hexdigest()
    listed = [o.uri for o in storage.list(f"s3://{bucket}/out")]
    assert sorted(listed) == sorted(result["output_uri"][:2])
    assert result["output_uri"][1] == f"s3://{bucket}/out/{bucket}/in/good.png"
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True and limit == Image.MAX_IMAGE_PIXELS


def test_encode_failures_are_per_row(tmp_path, s3_server):
    storage = s3_server.storage(max_attempts=1)
    srcs = [save(tmp_path / name, photo()) for name in ("a.png", "b.png", "c.png")]
    decoded = restore(decode(fetch(manifest(srcs), storage), 10**6))
    # An actor breaking its contract: restored bytes that are not an image of the input's shape and depth.
    decoded["restored"][1] = decoded["restored"][1][:-2]
    decoded["restored"][2] = image_at(decoded, 2).astype(np.uint16).tobytes()  # 16-bit for an 8-bit input

    result = encode_and_write(decoded, "s3://no-such-bucket-here/out", "same", storage, MODEL)

    assert list(result["status"]) == ["failed"] * 3
    assert "bucket 'no-such-bucket-here' does not exist" in result["error"][0]
    assert (
        result["error"][1]
        == "could not encode as PNG: restored holds 9214 bytes, not a 48x64x3 image of uint8"
    )
    assert result["error"][2].startswith("could not encode as PNG: restored holds 18432 bytes, not a 48x64x3")


def test_mixed_bit_depths_survive_ray_blocks(tmp_path):
    """Ray turns each batch into an Arrow block and concatenates blocks at will: 8- and 16-bit images must
    come back bit-exact in their own depth (as tensor columns they came back as uint16, or failed to
    concatenate at all)."""
    import pyarrow as pa
    from ray.data.block import BlockAccessor

    storage = Storage()
    srcs = [save(tmp_path / "gray.png", photo("L")), save(tmp_path / "deep.png", photo("I;16"))]
    decoded = decode(fetch(manifest(srcs), storage), 10**6)
    blocks = [BlockAccessor.batch_to_block({k: v[i : i + 1] for k, v in decoded.items()}) for i in range(2)]
    shipped = BlockAccessor.for_block(pa.concat_tables(blocks)).to_batch_format("numpy")

    result = encode_and_write(restore(shipped), str(tmp_path / "out"), "same", storage, MODEL)

    for i, uri in enumerate(result["output_uri"]):
        out = reopen(uri, storage)["pixels"]
        assert out.dtype == image_at(decoded, i).dtype == image_at(shipped, i).dtype
        np.testing.assert_array_equal(out, image_at(decoded, i))


def test_empty_batches_pass_through(tmp_path):
    storage = Storage()
    decoded = decode(fetch(manifest([]), storage), 10**6)
    result = encode_and_write(restore(decoded), str(tmp_path), "same", storage, MODEL)
    assert list(result) == RESULT_SCHEMA.names
    assert all(len(values) == 0 for values in result.values())


def test_a_row_whose_output_would_escape_fails_and_writes_nothing(tmp_path):
    src = tmp_path / "in" / "a.jpg"
    src.parent.mkdir()
    photo().save(src)
    storage = Storage()
    decoded = decode(fetch(manifest([str(src)]), storage), 10**6)
    decoded["uri"] = column(["s3://bucket/../../escape/evil.jpg"])  # what an S3 listing can hand over
    result = encode_and_write(restore(decoded), str(tmp_path / "deep" / "out"), "same", storage, MODEL)
    assert result["status"][0] == "failed" and "path segments" in result["error"][0]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [src]  # nothing written, inside or out
