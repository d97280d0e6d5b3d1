"""Odd inputs that must never come out "ok" with less data than the original (#9 items 8 and 9): every frame
or fail, full 16-bit depth or fail. Every image is generated here (odd_files.py); the stages run on hand-built
batches, as in test_stages.py."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
import tifffile
from odd_files import (
    MAKE,
    MODEL,
    ORIENTATION,
    SRGB,
    chunk,
    cv2_encoded,
    deep,
    encoded,
    exif_of,
    exif_with,
    photo,
    png16,
    reopen,
    run,
    tiff_encoded,
    write,
)
from PIL import Image, ImageOps
from stage_batches import manifest

from pipeline.batch.stages import decode, encode_and_write, fetch, image_at
from pipeline.storage import Storage

# -- multi-frame inputs ----------------------------------------------------------------------------------


def frames(n: int = 3) -> list[Image.Image]:
    """Visibly different frames, so no writer merges them."""
    return [Image.fromarray(np.roll(photo(), 7 * i, axis=1)) for i in range(n)]


@pytest.mark.parametrize(
    ("name", "fmt", "options", "reason"),
    [
        ("pages.tif", "TIFF", {}, "multi-page TIFF (3 pages)"),
        ("anim.gif", "GIF", {"duration": 100, "loop": 0}, "animated GIF (3 frames)"),
        ("anim.png", "PNG", {"duration": 100}, "animated PNG (3 frames)"),
        ("anim.webp", "WEBP", {"duration": 100, "lossless": True}, "animated WebP (3 frames)"),
    ],
)
def test_multi_frame_images_fail_with_their_frame_count(tmp_path, name, fmt, options, reason):
    first, *rest = frames(3)
    src = write(tmp_path / "in" / name, encoded(first, fmt, save_all=True, append_images=rest, **options))
    with Image.open(src) as image:
        assert image.n_frames == 3

    decoded, row = run(src, tmp_path / "out")

    assert decoded["error"][0] == f"{reason}; only single-frame images are restored"
    assert (row["status"], row["error"], row["output_uri"]) == ("failed", decoded["error"][0], "")
    assert not (tmp_path / "out").exists()


def test_camera_mpo_with_a_preview_is_restored_as_its_jpeg(tmp_path):
    """A camera JPEG that carries a preview picture (MPO) is one photo, not a multi-frame image."""
    main, preview = Image.fromarray(photo((64, 48))), Image.fromarray(photo((16, 12)))
    src = write(tmp_path / "in" / "camera.jpg", encoded(main, "MPO", save_all=True, append_images=[preview]))
    with Image.open(src) as image:
        assert (image.format, image.n_frames) == ("MPO", 2)

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"]) == ("ok", "")
    assert row["output_uri"].endswith("/camera.jpg") and image_at(decoded, 0).shape == (48, 64, 3)
    assert reopen(row["output_uri"])["format"] == "JPEG"


def test_tiff_whose_second_page_is_a_reduced_resolution_preview_is_one_image(tmp_path):
    full, preview = photo(), photo((10, 8))
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        tiff.write(full, photometric="rgb")
        tiff.write(preview, photometric="rgb", subfiletype=1)  # NewSubfileType 1: a reduced-resolution copy
    src = write(tmp_path / "in" / "scan.tif", buffer.getvalue())

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"]) == ("ok", "")
    np.testing.assert_array_equal(image_at(decoded, 0), full)


def test_tiff_pages_that_are_not_previews_still_fail(tmp_path):
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        tiff.write(photo(), photometric="rgb", subfiletype=1)  # the first page marked as a preview
        tiff.write(photo(), photometric="rgb")
    src = write(tmp_path / "in" / "scan.tif", buffer.getvalue())

    decoded, _ = run(src, tmp_path / "out")

    assert decoded["error"][0] == "multi-page TIFF (2 pages); only single-frame images are restored"


# -- 16-bit colour ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "channels", "make"),
    [
        ("rgb48.png", 3, lambda p: cv2_encoded(p, ".png")),
        ("rgba64.png", 4, lambda p: cv2_encoded(p, ".png")),
        ("la32.png", 2, png16),
        ("rgb48.tif", 3, lambda p: cv2_encoded(p, ".tif")),
        ("rgba64.tif", 4, lambda p: tiff_encoded(p, photometric="rgb", extrasamples=["unassalpha"])),
        ("bigendian.tif", 3, lambda p: tiff_encoded(p, photometric="rgb", byteorder=">", compression="zlib")),
    ],
)
def test_16_bit_colour_is_restored_at_full_depth(tmp_path, name, channels, make):
    pixels = deep(channels)
    src = write(tmp_path / "in" / name, make(pixels))

    decoded, row = run(src, tmp_path / "out")

    assert decoded["error"][0] == ""
    assert (decoded["bit_depth"][0], decoded["channels"][0]) == (16, channels)
    np.testing.assert_array_equal(image_at(decoded, 0), pixels)
    assert (row["status"], row["output_uri"].rsplit("/", 1)[1]) == ("ok", name)
    out = reopen(row["output_uri"])
    assert out["format"] == decoded["format"][0] and out["bit_depth"] == 16
    np.testing.assert_array_equal(out["pixels"], pixels)


@pytest.mark.parametrize(("channels", "output_format"), [(3, "tiff"), (2, "tiff"), (4, "png"), (2, "png")])
def test_16_bit_colour_converts_between_png_and_tiff_at_full_depth(tmp_path, channels, output_format):
    pixels = deep(channels)
    src = write(tmp_path / "in" / "deep.png", png16(pixels))

    _, row = run(src, tmp_path / "out", output_format)

    out = reopen(row["output_uri"])
    assert out["format"] == output_format.upper() and out["bit_depth"] == 16
    if channels == 2 and output_format == "tiff":  # neither Pillow nor OpenCV reads 16-bit gray+alpha TIFF
        pixels = pixels[:, :, [0, 0, 0, 1]]
    np.testing.assert_array_equal(out["pixels"], pixels)
    # Other readers see the same 16-bit image: OpenCV (libtiff, libpng) as well as Pillow's header.
    written = cv2.imread(row["output_uri"], cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint16 and written.shape[:2] == pixels.shape[:2]


@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16_bit_colour_through_the_model_comes_out_16_bit(tmp_path, tiny_checkpoint, channels):
    from pipeline.batch.restorer import Restorer

    pixels = deep(channels)
    src = write(tmp_path / "in" / "deep.png", png16(pixels))
    storage = Storage()
    decoded = decode(fetch(manifest([src]), storage), 10**6)

    restored = Restorer(str(tiny_checkpoint), storage, device="cpu")(decoded)
    result = encode_and_write(restored, str(tmp_path / "out"), "same", storage, MODEL)

    assert result["status"][0] == "ok", result["error"][0]
    out = reopen(result["output_uri"][0])
    assert out["bit_depth"] == 16 and out["pixels"].shape == pixels.shape
    np.testing.assert_array_equal(out["pixels"], image_at(restored, 0, "restored"))
    assert not np.array_equal(out["pixels"], pixels)  # the model ran
    if channels in (2, 4):
        np.testing.assert_array_equal(out["pixels"][:, :, -1], pixels[:, :, -1])  # alpha bit for bit


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_16_bit_colour_written_as_jpeg_or_webp_is_reduced_to_8_bit(tmp_path, output_format):
    pixels = deep(3)
    src = write(tmp_path / "in" / "deep.png", cv2_encoded(pixels, ".png"))

    _, row = run(src, tmp_path / "out", output_format)

    out = reopen(row["output_uri"])
    assert out["bit_depth"] == 8 and out["pixels"].shape == pixels.shape
    assert np.abs(out["pixels"].astype(int) - pixels / 257).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16_bit_png_keeps_orientation_exif_icc_and_dpi(tmp_path, orientation):
    pixels = deep(3)
    exif = exif_with(orientation).tobytes()[6:]  # a PNG's eXIf holds the TIFF structure alone
    iccp = b"sRGB\0\0" + zlib.compress(SRGB)
    phys = struct.pack(">IIB", round(300 / 0.0254), round(150 / 0.0254), 1)
    body = png16(pixels, chunk(b"eXIf", exif), chunk(b"iCCP", iccp), chunk(b"pHYs", phys))
    src = write(tmp_path / "in" / "deep.png", body)
    # Pillow's own orientation, at full depth, is the reference: each channel as a 16-bit gray PNG.
    gray = [Image.open(io.BytesIO(png16(pixels[:, :, [k]], chunk(b"eXIf", exif)))) for k in range(3)]
    expected = np.stack([np.asarray(ImageOps.exif_transpose(channel)) for channel in gray], axis=2)
    dpi = (150.0, 300.0) if orientation in (5, 6, 7, 8) else (300.0, 150.0)

    decoded, row = run(src, tmp_path / "out")

    assert decoded["error"][0] == ""
    np.testing.assert_array_equal(image_at(decoded, 0), expected)
    out = reopen(row["output_uri"])
    for result in ({name: values[0] for name, values in decoded.items()}, out):
        assert dict(exif_of(result)) == {ORIENTATION: 1, MAKE: "Patina Test Camera"}
        assert result["icc"] == SRGB
        assert (result["dpi_x"], result["dpi_y"]) == pytest.approx(dpi, abs=0.02)  # PNG stores dots per metre
    np.testing.assert_array_equal(out["pixels"], expected)  # upright, not turned a second time


@pytest.mark.parametrize("output_format", ["same", "png"])
def test_16_bit_tiff_keeps_orientation_exif_icc_and_dpi(tmp_path, output_format):
    pixels = deep(4)
    body = tiff_encoded(
        pixels,
        photometric="rgb",
        extrasamples=["unassalpha"],
        resolution=(300, 150),
        resolutionunit="INCH",
        iccprofile=SRGB,
        extratags=[(ORIENTATION, "H", 1, 6, True), (MAKE, "s", 0, "Patina Test Camera", True)],
    )
    src = write(tmp_path / "in" / "scan.tif", body)

    decoded, row = run(src, tmp_path / "out", output_format)

    assert decoded["error"][0] == ""
    np.testing.assert_array_equal(image_at(decoded, 0), np.rot90(pixels, -1))  # 6: turned clockwise
    out = reopen(row["output_uri"])
    np.testing.assert_array_equal(out["pixels"], np.rot90(pixels, -1))
    assert exif_of(out)[MAKE] == "Patina Test Camera" and exif_of(out).get(ORIENTATION, 1) == 1
    assert out["icc"] == SRGB
    assert (out["dpi_x"], out["dpi_y"]) == pytest.approx((150, 300), abs=0.02)


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        (
            "press.tif",
            lambda: tiff_encoded(deep(4), photometric="separated"),
            "16-bit CMYK TIFF could not be read at full depth; restoring it at 8 bits would lose precision",
        ),
        (
            "planar.tif",
            lambda: tiff_encoded(deep(3).transpose(2, 0, 1), photometric="rgb", planarconfig="separate"),
            "16-bit RGB TIFF with separate colour planes is not supported; restoring it at 8 bits would lose "
            "precision",
        ),
        (
            "scan.jp2",
            lambda: cv2_encoded(deep(3, (64, 64)), ".jp2"),
            "16-bit RGB JPEG 2000 is not supported; restoring it at 8 bits would lose precision",
        ),
    ],
)
def test_16_bit_colour_that_cannot_be_read_at_full_depth_fails(tmp_path, name, make, reason):
    src = write(tmp_path / "in" / name, make())

    _, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"]) == ("failed", reason)


@pytest.mark.parametrize("fmt", ["JPEG2000", "J2K"])
def test_8_bit_jpeg_2000_is_still_restored(tmp_path, fmt):
    """The bits per sample come from the codestream, bare (.j2k) or in its box (.jp2)."""
    src = write(
        tmp_path / "in" / f"scan.{fmt.lower()}",
        encoded(Image.fromarray(photo()), "JPEG2000", no_jp2=fmt == "J2K"),
    )

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"], decoded["bit_depth"][0]) == ("ok", "", 8)


@pytest.mark.parametrize("bits", [8, 16])
def test_a_bigtiff_scan_is_restored_with_its_tags(tmp_path, bits):
    # The format of scans over 4 GiB: read, restored and written (once the restoration was lost at encode,
    # its BigTIFF-style EXIF unreadable by the EXIF writer).
    pixels = deep(3) if bits == 16 else photo((40, 30))
    src = tmp_path / "in" / "scan.tif"
    src.parent.mkdir()
    tifffile.imwrite(src, pixels, bigtiff=True, photometric="rgb", resolution=(600, 600), resolutionunit=2)
    _, row = run(str(src), tmp_path / "out")
    assert row["status"] == "ok", row["error"]
    out = reopen(row["output_uri"])
    np.testing.assert_array_equal(out["pixels"], pixels)  # the stand-in restorer copies: lossless round trip
    assert out["bit_depth"] == bits and (out["dpi_x"], out["dpi_y"]) == (600, 600)


def test_an_output_too_large_for_a_classic_tiff_is_written_as_a_bigtiff():
    # Past 4 GiB a classic TIFF cannot point at its strips: the writer switches to 64-bit offsets, which
    # tifffile and Pillow both read (forced here on a small image; the switch itself is by size).
    from pipeline.batch.encoding import _tiff

    pixels = deep(3)
    exif = exif_with().tobytes()
    for bigtiff in (False, True):
        data = _tiff(pixels, "RGB", exif, b"", (300.0, 300.0), bigtiff=bigtiff)
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            assert tif.is_bigtiff == bigtiff
            np.testing.assert_array_equal(tif.asarray(), pixels)
        assert Image.open(io.BytesIO(data)).getexif()[MAKE] == "Patina Test Camera"
