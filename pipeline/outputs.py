"""Where each restored image goes and in which format: output keys that stay inside the output prefix and
never land on an original."""

from __future__ import annotations

import os

from pipeline.storage import Storage, is_same_or_inside, parse_uri

OUTPUT_FORMATS = ("same", "png", "jpeg", "tiff", "webp")
# Pillow format -> (extension appended when the output format differs from the input's, content type).
WRITERS = {
    "PNG": (".png", "image/png"),
    "JPEG": (".jpg", "image/jpeg"),
    "TIFF": (".tif", "image/tiff"),
    "WEBP": (".webp", "image/webp"),
}
_ALIASES = {"MPO": "JPEG"}  # camera JPEGs that carry extra pictures (MPF)


def output_uri(input_uri: str, output_prefix: str, input_format: str, output_format: str) -> str:
    """Where the restoration of ``input_uri`` goes: s3://bucket/key -> <prefix>/bucket/key, a local path or
    file:// URI -> <prefix>/<absolute path, symlinks resolved, without its leading '/'>. The key is kept
    when the written format is the input's (Pillow name, e.g. "JPEG"); otherwise the new extension is
    appended (scan.tif -> scan.tif.png), so inputs differing only in extension never share an output.
    Raises ValueError for an unknown ``output_format`` or an output that would be the input itself."""
    source = parse_uri(input_uri)
    if source.scheme == "s3":
        relative = f"{source.bucket}/{source.key}"
        if {".", ".."} & set(relative.split("/")):
            # On a local disk '..' would climb out of the output prefix; on S3 it is a confusing alias.
            raise ValueError(
                f"{input_uri}: key has '.' or '..' path segments; refusing to map it to an output"
            )
    else:
        relative = os.path.realpath(source.key).lstrip("/")
    written = written_format(input_format, output_format)
    if written != _ALIASES.get(input_format, input_format):
        relative += WRITERS[written][0]
    uri = Storage.join(output_prefix, relative)
    if not is_same_or_inside(uri, output_prefix) or uri.rstrip("/") == output_prefix.rstrip("/"):
        raise ValueError(
            f"{input_uri}: its output {uri} would fall outside the output prefix {output_prefix}"
        )
    if is_same_or_inside(uri, input_uri):
        raise ValueError(
            f"{uri}: output would overwrite the input; choose an output prefix outside the inputs"
        )
    return uri


def written_format(input_format: str, output_format: str) -> str:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"unknown output format {output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
        )
    if output_format != "same":
        return output_format.upper()
    fmt = _ALIASES.get(input_format, input_format)
    return fmt if fmt in WRITERS else "PNG"
