"""Odd encodings (#9 items 8 and 9): floats read by their convention, clear reasons for corrupt files, and
TIFF output that keeps a camera's EXIF. Every image is generated here (odd_files.py); the stages run on
hand-built batches, as in test_stages.py."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from odd_files import (
    EXIF_IFD,
    GPS_IFD,
    MAKE,
    SRGB,
    chunk,
    encoded,
    exif_with,
    photo,
    reopen,
    run,
    tiff_encoded,
    write,
)
from PIL import Image

from pipeline.batch.stages import image_at

# -- floats ----------------------------------------------------------------------------------------------


def test_float_tiff_in_0_to_1_is_restored_at_16_bits(tmp_path):
    values = np.random.default_rng(0).random((30, 40), dtype=np.float32)
    values[0, :2] = 0.0, 1.0
    src = write(tmp_path / "in" / "measure.tif", encoded(Image.fromarray(values), "TIFF"))

    decoded, row = run(src, tmp_path / "out")

    pixels = image_at(decoded, 0)
    assert (decoded["mode"][0], decoded["bit_depth"][0], pixels.shape) == ("F", 16, (30, 40, 1))
    np.testing.assert_array_equal(pixels[:, :, 0], np.rint(values * 65535).astype(np.uint16))
    assert pixels.max() == 65535  # not black
    out = reopen(row["output_uri"])
    np.testing.assert_array_equal(out["pixels"], pixels)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_float_tiff_with_non_finite_values_fails(tmp_path, bad):
    values = np.full((4, 5), 0.5, np.float32)
    values[1, 2] = bad
    src = write(tmp_path / "in" / "measure.tif", encoded(Image.fromarray(values), "TIFF"))

    _, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"]) == (
        "failed",
        "float image has NaN or infinite values; only finite values can be restored",
    )


# -- corrupt files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["IHDR", "tEXt"])
def test_png_with_a_bad_crc_is_called_corrupt(tmp_path, where):
    body = encoded(Image.fromarray(photo()), "PNG")
    if where == "tEXt":  # an ancillary chunk before the image data
        body = body[:33] + chunk(b"tEXt", b"Title\0scan") + body[33:]
    at = body.index(where.encode()) + 4
    length = struct.unpack(">I", body[at - 8 : at - 4])[0]
    crc = at + length
    body = body[:crc] + bytes([body[crc] ^ 0xFF]) + body[crc + 1 :]
    src = write(tmp_path / "in" / "broken.png", body)

    _, row = run(src, tmp_path / "out")

    assert row["status"] == "failed"
    assert row["error"] == (
        f"truncated or corrupt image: broken PNG file (bad header checksum in {where.encode()!r})"
    )


@pytest.mark.parametrize(
    ("pixels", "options", "layout"),
    [
        (np.zeros((4, 5, 3), np.float32), {"photometric": "rgb"}, "RGB, 3 x 32-bit float samples"),
        (
            np.zeros((4, 5, 2), np.uint16),
            {"photometric": "minisblack", "extrasamples": ["unassalpha"]},
            "gray, 2 x 16-bit unsigned samples",
        ),
        (np.zeros((4, 5), np.float64), {"photometric": "minisblack"}, "gray, 1 x 64-bit float samples"),
        (
            np.zeros((4, 5, 3), np.int32),
            {"photometric": "rgb", "byteorder": ">"},
            "RGB, 3 x 32-bit signed samples",
        ),
    ],
)
def test_tiff_whose_pixel_layout_has_no_reader_says_which_it_is(tmp_path, pixels, options, layout):
    """Valid TIFFs that Pillow cannot read are not called corrupt, nor 'not an image'."""
    src = write(tmp_path / "in" / "odd.tif", tiff_encoded(pixels, **options))

    _, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"]) == ("failed", f"unsupported TIFF pixel layout: {layout} per pixel")


# -- TIFF output of camera EXIF --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fmt", "output_format"), [("camera.jpg", "JPEG", "tiff"), ("scan.tif", "TIFF", "same")]
)
def test_tiff_output_keeps_a_cameras_exif_sub_ifds(tmp_path, name, fmt, output_format):
    src = write(
        tmp_path / "in" / name, encoded(Image.fromarray(photo()), fmt, exif=exif_with(camera=True).tobytes())
    )

    decoded, row = run(src, tmp_path / "out", output_format)

    assert (row["status"], row["error"]) == ("ok", "")
    with Image.open(row["output_uri"]) as image:
        assert image.format == "TIFF" and image.info["compression"] == "tiff_adobe_deflate"
        exif = image.getexif()
        assert exif[MAKE] == "Patina Test Camera"
        assert exif.get_ifd(EXIF_IFD) == exif_with(camera=True)[EXIF_IFD]
        assert exif.get_ifd(GPS_IFD) == exif_with(camera=True)[GPS_IFD]
    out = reopen(row["output_uri"])
    assert out["pixels"].shape == (30, 40, 3)
    if fmt == "TIFF":
        np.testing.assert_array_equal(out["pixels"], image_at(decoded, 0))


@pytest.mark.parametrize(
    ("mode", "channels", "written_mode", "icc"),
    [("L", 1, "L", b""), ("LA", 2, "LA", b""), ("RGBA", 4, "RGBA", SRGB), ("I;16", 1, "I;16", b"")],
)
def test_tiff_output_of_each_mode_is_exact(tmp_path, mode, channels, written_mode, icc):
    image = Image.fromarray(photo())
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image.convert("L")).astype(np.uint16) * 257)
    elif mode == "RGBA":
        image.putalpha(Image.fromarray(photo()[:, :, 1]))
    else:
        image = image.convert(mode)
    src = write(tmp_path / "in" / "a.png", encoded(image, "PNG", dpi=(200, 200), icc_profile=icc or None))

    decoded, row = run(src, tmp_path / "out", "tiff")

    assert decoded["channels"][0] == channels
    with Image.open(row["output_uri"]) as written:
        assert written.mode == written_mode
    out = reopen(row["output_uri"])
    np.testing.assert_array_equal(out["pixels"], image_at(decoded, 0))
    assert (out["dpi_x"], out["dpi_y"]) == pytest.approx((200, 200), abs=0.01)
    assert out["icc"] == icc
