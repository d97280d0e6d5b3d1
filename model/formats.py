"""Which files are images: the Pillow formats decode reads, and the file extensions that name them (one list,
so a manifest never leaves out a file the job could restore)."""

from __future__ import annotations

from PIL import Image

# Pillow formats decode reads (its JPEG reader also yields "MPO" images). Not all Pillow can open: its EPS
# reader runs Ghostscript on the file, which untrusted archive files must never reach.
DECODE_FORMATS = ("JPEG", "PNG", "TIFF", "WEBP", "BMP", "GIF", "JPEG2000")


def _extensions() -> tuple[str, ...]:
    Image.init()  # registers every plugin's extensions
    formats = {*DECODE_FORMATS, "MPO"}
    return tuple(sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in formats))


# .jpg .jpeg .jpe .jfif .mpo .png .apng .tif .tiff .webp .bmp .gif .jp2 .j2k .jpc .jpf .jpx .j2c
IMAGE_EXTENSIONS = _extensions()
