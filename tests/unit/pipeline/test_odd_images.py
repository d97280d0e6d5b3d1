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


def test_a_first_page_marked_as_a_preview_is_still_a_page(tmp_path):
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        tiff.write(photo(), photometric="rgb", subfiletype=1)  # the first page marked as a preview
        tiff.write(photo((20, 10)), photometric="rgb")
    src = write(tmp_path / "in" / "scan.tif", buffer.getvalue())

    _, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"], row["pages"]) == ("ok", "", 2)
    with tifffile.TiffFile(row["output_uri"]) as tif:
        assert [page.shape for page in tif.pages] == [(30, 40, 3), (10, 20, 3)]


def multi_page_tiff(bigtiff: bool = False) -> tuple[bytes, list[np.ndarray]]:
    """Three pages as an archive scans them: 8-bit RGB, 16-bit RGB and 16-bit gray, each its own size,
    description and resolution, with a scanner's thumbnail (a reduced-resolution IFD) after the first."""
    pages = [photo((40, 30)), deep(3, (24, 36), seed=1), deep(1, (50, 20), seed=2)[:, :, 0]]
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer, bigtiff=bigtiff) as tiff:
        for k, (pixels, dpi) in enumerate(zip(pages, (300, 600, 1200), strict=True)):
            photometric = "rgb" if pixels.ndim == 3 else "minisblack"
            tiff.write(
                pixels,
                photometric=photometric,
                description=f"page {k + 1}",
                resolution=(dpi, dpi),
                resolutionunit="INCH",
                compression="zlib",
            )
            if k == 0:
                tiff.write(pixels[::8, ::8], photometric="rgb", subfiletype=1)
    return buffer.getvalue(), pages


def test_every_page_of_a_multi_page_tiff_is_restored_with_its_depth_size_and_tags(tmp_path):
    body, pages = multi_page_tiff()
    src = write(tmp_path / "in" / "letters.tif", body)

    _, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"], row["pages"]) == ("ok", "", 3)
    assert (row["width"], row["height"]) == (40, 30)  # the first page's
    with tifffile.TiffFile(row["output_uri"]) as tif:
        assert len(tif.pages) == 3  # the thumbnail is left out
        for k, (page, pixels, dpi) in enumerate(zip(tif.pages, pages, (300, 600, 1200), strict=True)):
            assert page.description == f"page {k + 1}"
            assert page.tags["XResolution"].value == (dpi, 1) and page.tags["ResolutionUnit"].value == 2
            np.testing.assert_array_equal(page.asarray(), pixels)  # the stand-in restorer copies
    assert [page.dtype for page in pages] == [np.uint8, np.uint16, np.uint16]


def test_a_multi_page_tiff_through_the_model_has_every_page_restored(tmp_path, tiny_checkpoint):
    from pipeline.batch.restorer import Restorer

    body, pages = multi_page_tiff()
    src = write(tmp_path / "in" / "letters.tif", body)
    storage = Storage()
    decoded = decode(fetch(manifest([src]), storage), 10**6)

    restored = Restorer(str(tiny_checkpoint), storage, device="cpu")(decoded)
    result = encode_and_write(restored, str(tmp_path / "out"), "same", storage, MODEL)

    assert (result["status"][0], result["pages"][0]) == ("ok", 3), result["error"][0]
    with tifffile.TiffFile(result["output_uri"][0]) as tif:
        written = [page.asarray() for page in tif.pages]
    assert [p.shape for p in written] == [p.shape for p in pages]
    assert [p.dtype for p in written] == [p.dtype for p in pages]
    assert all(not np.array_equal(out, pixels) for out, pixels in zip(written, pages, strict=True))


def test_a_multi_page_tiff_in_a_single_picture_format_fails_its_row(tmp_path):
    src = write(tmp_path / "in" / "letters.tif", multi_page_tiff()[0])

    _, row = run(src, tmp_path / "out", "png")

    assert (row["status"], row["pages"]) == ("failed", 0)
    assert row["error"] == (
        "multi-page TIFF (3 pages) can only be written as TIFF, not png; "
        "restore it with --format same or tiff"
    )
    assert not (tmp_path / "out").exists()


def test_the_pixel_limit_counts_every_page(tmp_path):
    src = write(tmp_path / "in" / "letters.tif", multi_page_tiff()[0])
    storage = Storage()

    decoded = decode(fetch(manifest([src]), storage), 40 * 30 + 24 * 36)  # two pages' worth, not three

    assert decoded["error"][0] == (
        "multi-page TIFF has 3,064 pixels in its 3 pages, over the limit of 2,064 (raise --max-pixels)"
    )


def test_a_bigtiff_input_comes_out_as_a_bigtiff_with_every_page(tmp_path):
    src = write(tmp_path / "in" / "letters.tif", multi_page_tiff(bigtiff=True)[0])

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], row["pages"], decoded["bigtiff"][0]) == ("ok", 3, True)
    with tifffile.TiffFile(row["output_uri"]) as tif:
        assert tif.is_bigtiff and len(tif.pages) == 3


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
        (
            "planar.tif",
            3,
            lambda p: tiff_encoded(p.transpose(2, 0, 1), photometric="rgb", planarconfig="separate"),
        ),
        (
            "planar-rgba.tif",
            4,
            lambda p: tiff_encoded(
                p.transpose(2, 0, 1), photometric="rgb", planarconfig="separate", extrasamples=["unassalpha"]
            ),
        ),
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
            "extra.tif",
            lambda: tiff_encoded(deep(4), photometric="rgb", extrasamples=["unspecified"]),
            "16-bit RGB TIFF could not be read at full depth; restoring it at 8 bits would lose precision",
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


def test_16_bit_rgba_with_associated_alpha_is_restored_at_full_depth(tmp_path):
    straight = deep(4)
    alpha = straight[:, :, 3:].astype(np.float64)
    premultiplied = np.concatenate([np.rint(straight[:, :, :3] * alpha / 65535), alpha], 2).astype(np.uint16)
    src = write(
        tmp_path / "in" / "cutout.tif",
        tiff_encoded(premultiplied, photometric="rgb", extrasamples=["assocalpha"]),
    )

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], decoded["bit_depth"][0], decoded["channels"][0]) == ("ok", 16, 4), row["error"]
    pixels = image_at(decoded, 0)
    np.testing.assert_array_equal(pixels[:, :, 3], straight[:, :, 3])  # alpha bit for bit
    opaque = straight[:, :, 3] > 4096  # where premultiplying kept enough of the colour to divide back
    assert np.abs(pixels[opaque][:, :3].astype(int) - straight[opaque][:, :3]).max() <= 16
    out = reopen(row["output_uri"])
    assert out["bit_depth"] == 16
    np.testing.assert_array_equal(out["pixels"], pixels)


def test_16_bit_cmyk_is_restored_at_full_depth_and_written_back_as_cmyk(tmp_path):
    cmyk = deep(4)
    src = write(tmp_path / "in" / "press.tif", tiff_encoded(cmyk, photometric="separated"))

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], decoded["mode"][0], decoded["bit_depth"][0]) == ("ok", "CMYK", 16), row["error"]
    inverse = 65535 - cmyk.astype(np.int64)
    expected = (inverse[:, :, :3] * inverse[:, :, 3:] + 32767) // 65535  # Pillow's 8-bit formula at 16
    np.testing.assert_array_equal(image_at(decoded, 0), expected)
    assert (image_at(decoded, 0) & 0xFF).any()  # the low bytes are there
    with tifffile.TiffFile(row["output_uri"]) as tif:
        page = tif.pages[0]
        assert (page.photometric, page.dtype) == (tifffile.PHOTOMETRIC.SEPARATED, np.uint16)
        written = page.asarray()
    np.testing.assert_array_equal(written[:, :, :3], 65535 - expected)  # as Pillow writes RGB as CMYK
    assert not written[:, :, 3].any()


@pytest.mark.parametrize(("channels", "photometric"), [(3, "rgb"), (1, "minisblack")])
def test_32_bit_unsigned_tiff_is_scaled_to_16_bits(tmp_path, channels, photometric):
    values = np.random.default_rng(3).integers(0, 2**32, (30, 40, channels), dtype=np.uint32)
    values[0, 0], values[0, 1] = 0, 2**32 - 1
    src = write(
        tmp_path / "in" / "scan.tif",
        tiff_encoded(
            values if channels > 1 else values[:, :, 0], photometric=photometric, resolution=(400, 400)
        ),
    )

    decoded, row = run(src, tmp_path / "out")

    assert (row["status"], row["error"], decoded["bit_depth"][0]) == ("ok", "", 16)
    pixels = image_at(decoded, 0)
    np.testing.assert_array_equal(pixels, np.rint(values / 65537).astype(np.uint16))
    assert pixels[0, 0, 0] == 0 and pixels[0, 1, 0] == 65535
    out = reopen(row["output_uri"])
    assert out["bit_depth"] == 16 and (out["dpi_x"], out["dpi_y"]) == (400, 400)
    np.testing.assert_array_equal(out["pixels"], pixels)


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
    with tifffile.TiffFile(row["output_uri"]) as tif:
        assert tif.is_bigtiff  # as the input was, though small


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
