"""Where each restored image goes and in which format: output keys that stay inside the output prefix, never
land on an original and never on another row's output.

Inputs and outputs are compared by identity: ``s3://bucket/key`` on S3, the real path on a local disk (plain
paths and file:// URIs alike, symlinks and '..' resolved), so no spelling of a folder slips past a check.
``check_output_prefix`` refuses a bad prefix before any work starts; ``plan_collisions`` names the rows that
must fail instead of overwriting something; ``output_uri`` maps one row when it is written.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.storage import Storage, StorageError, is_same_or_inside, parse_uri

OUTPUT_FORMATS = ("same", "png", "jpeg", "tiff", "webp")
# Pillow format -> (extension appended when the output format differs from the input's, content type).
WRITERS = {
    "PNG": (".png", "image/png"),
    "JPEG": (".jpg", "image/jpeg"),
    "TIFF": (".tif", "image/tiff"),
    "WEBP": (".webp", "image/webp"),
}
_ALIASES = {"MPO": "JPEG"}  # camera JPEGs that carry extra pictures (MPF)


def _odd_segments(key: str) -> bool:
    """An S3 key with an empty, '.' or '..' segment: on a local disk '..' would climb out of a prefix, and
    'a//b' and 'a/./b' would both land on 'a/b'; on S3 they are confusing aliases."""
    return bool({"", ".", ".."} & set(key.split("/")))


def output_uri(input_uri: str, output_prefix: str, input_format: str, output_format: str) -> str:
    """Where the restoration of ``input_uri`` goes: s3://bucket/key -> <prefix>/bucket/key, a local path or
    file:// URI -> <prefix>/<absolute path, symlinks resolved, without its leading '/'>. The key is kept
    when the written format is the input's (Pillow name, e.g. "JPEG"); otherwise the new extension is
    appended (scan.tif -> scan.tif.png), so inputs differing only in extension never share an output.
    Raises ValueError for an unknown ``output_format`` or an output that would be the input itself."""
    source = parse_uri(input_uri)
    if source.scheme == "s3":
        relative = f"{source.bucket}/{source.key}"
        if _odd_segments(relative):
            raise ValueError(
                f"{input_uri}: key has empty, '.' or '..' path segments; refusing to map it to an output"
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


MASK_SUFFIX = ".mask.png"


def mask_uri(output: str) -> str:
    """Where ``--masks`` writes the defect mask of the output at ``output``: beside it, named after it."""
    return output + MASK_SUFFIX


def written_format(input_format: str, output_format: str) -> str:
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(
            f"unknown output format {output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
        )
    if output_format != "same":
        return output_format.upper()
    fmt = _ALIASES.get(input_format, input_format)
    return fmt if fmt in WRITERS else "PNG"


def identity(uri: str) -> str:
    """The place ``uri`` names, in one spelling: s3://bucket/key, or the absolute real path of a local file
    or folder (a file:// URI and a plain path of the same file give the same string). Raises StorageError
    for a URI that is not one (see parse_uri)."""
    parsed = parse_uri(uri)
    if parsed.scheme == "s3":
        return f"s3://{parsed.bucket}/{parsed.key}"
    return os.path.realpath(parsed.key)


def check_output_prefix(uris: pa.Array, output: str) -> None:
    """Refuse, before any work starts, an output prefix that could write an original: the filesystem root,
    a prefix equal to or inside a folder (S3: bucket and key prefix) that holds an input, or one that
    contains such a folder. Compared by
    identity, per input folder, so archives may span folders and buckets and no alias slips through."""
    parsed = parse_uri(output)
    if parsed.scheme == "s3":
        key = parsed.key.rstrip("/")  # a trailing '/' only says it is a prefix
        if key and _odd_segments(key):
            raise ValueError(
                f"output {output} has an empty, '.' or '..' segment; S3 keys are not paths: spell the "
                "prefix plainly (input keys with them are refused too)"
            )
    elif output.startswith("~"):
        raise ValueError(
            f"output {output} starts with '~', which only a shell expands (here it would be a folder named "
            "'~'); give the full path"
        )
    target = identity(output).rstrip("/")
    if not target:
        raise ValueError(f"output {output} is the filesystem root; choose a folder for the restored copies")
    folders: dict[str, str] = {}
    for folder in pc.unique(_folders(uris)).to_pylist():
        if folder is None:
            continue  # not a URI: fetch fails that row with the reason
        try:
            folders.setdefault(identity(folder or ".").rstrip("/") or "/", folder or "./")
        except StorageError:
            continue  # not a URI: fetch fails that row with the reason
    for ancestor in _self_and_ancestors(target):
        if ancestor in folders:
            raise ValueError(
                f"output {output} is inside the input folder {folders[ancestor]}; "
                "choose a prefix outside it so originals stay untouched"
            )
    # Above the inputs is refused too: outputs would be mixed into the archive's own tree, and a run's
    # clean-up of its temp files would walk the archive.
    below = next((folder for key, folder in folders.items() if key.startswith(target + "/")), None)
    if below is not None:
        raise ValueError(
            f"output {output} contains the input folder {below}; choose a prefix beside the inputs, not above"
        )
    if parsed.scheme == "file":
        _refuse_missing_before_dotdot(output, parsed.key)


def _refuse_missing_before_dotdot(output: str, path: str) -> None:
    """A local prefix such as /data/missing/../out names /data/out, but the system must walk through
    'missing' to write there: every row would fail with a misleading 'not found'. Refused up front."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part == ".." and i > 0:
            before = "/".join(parts[:i]) or "/"
            if not os.path.isdir(before):
                raise ValueError(
                    f"output {output} goes through {before}, which does not exist, before its '..'; "
                    "spell the path without '..'"
                )


def plan_collisions(
    ids: pa.Array, uris: pa.Array, output: str, output_format: str, masks: bool = False
) -> dict[str, str]:
    """Rows that must fail rather than write, as {id: reason}, in manifest order of precedence:

    - a row naming the same file as an earlier row (a duplicate, a path and its file:// URI, a symlink);
    - a row whose output key is an earlier row's (s3://data/x.jpg and /data/x.jpg both map to data/x.jpg);
    - a row whose output could be another row's: written in another format, a.jpg gets the extension
      appended (a.jpg.png), which is where the input a.jpg.png goes;
    - a row whose output would be an input of this manifest;
    - with ``masks``, a row whose output is where another row's mask goes (x.jpg.mask.png beside x.jpg), or
      whose mask would land on an input.

    Vectorised over Arrow arrays, so a million rows cost seconds, not a dict of Python strings. Rows with
    bad URIs are left to the fetch stage, which fails them with the reason."""
    ids, uris = _array(ids), _array(uris)
    appended = WRITERS[written_format("", output_format)][0]
    keys = _identities(uris)
    relative = pc.if_else(
        pc.starts_with(keys, "s3://"), pc.utf8_slice_codeunits(keys, 5), pc.utf8_ltrim(keys, "/")
    )
    refused: dict[str, str] = {}

    def refuse(mask: np.ndarray, reason: Callable[[int], str]) -> None:
        for row in np.flatnonzero(mask):
            refused.setdefault(ids[int(row)].as_py(), reason(int(row)))

    def at(array: pa.Array, row: int) -> str:
        return array[row].as_py()

    same_file, first_of = _repeats(keys)
    # Reasons start with words that do not vary by row, so a run's summary groups them (failure_reason).
    refuse(
        same_file,
        lambda r: (
            f"{at(uris, r)}: same file as an earlier row ({at(ids, first_of[r])}: {at(uris, first_of[r])})"
        ),
    )
    same_output, first_of = _repeats(relative)
    refuse(
        same_output & ~same_file,
        lambda r: (
            f"{at(uris, r)}: output shared with an earlier row ({at(uris, first_of[r])} -> {at(relative, r)})"
        ),
    )
    with_extension = pc.binary_join_element_wise(relative, appended, "")
    refuse(
        _member(with_extension, relative),
        lambda r: (
            f"{at(uris, r)}: output could collide with another row's ({at(with_extension, r)}); rename one"
        ),
    )
    target = pc.binary_join_element_wise(identity(output).rstrip("/") + "/", relative, "")
    lands = _member(target, keys) | _member(pc.binary_join_element_wise(target, appended, ""), keys)
    refuse(lands, lambda r: f"{at(uris, r)}: its output would overwrite an input of this manifest")
    if masks:
        outputs = pa.concat_arrays([relative, with_extension])
        for own in (relative, with_extension):  # a row's output key, in the same or another format
            is_mask = pc.fill_null(pc.ends_with(own, MASK_SUFFIX), False).to_numpy(zero_copy_only=False)
            base = pc.utf8_slice_codeunits(own, 0, -len(MASK_SUFFIX))
            refuse(
                is_mask & _member(base, outputs),
                lambda r: f"{at(uris, r)}: its output would be another row's defect mask; rename one",
            )
        mask_targets = [
            pc.binary_join_element_wise(t, MASK_SUFFIX, "")
            for t in (target, pc.binary_join_element_wise(target, appended, ""))
        ]
        refuse(
            _member(mask_targets[0], keys) | _member(mask_targets[1], keys),
            lambda r: f"{at(uris, r)}: its defect mask would overwrite an input of this manifest",
        )
    return refused


def _array(values) -> pa.Array:
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _identities(uris: pa.Array) -> pa.Array:
    """identity() of every uri (null where it is not a URI). S3 URIs are their own identity; a local path
    costs a realpath per folder, plus an lstat to see whether the file itself is a link."""
    folders: dict[str, str] = {}
    out: list[str | None] = []
    for uri in uris.to_pylist():
        if uri.startswith("s3://"):
            out.append(uri)
            continue
        try:
            parsed = parse_uri(uri)
        except StorageError:
            out.append(None)
            continue
        if parsed.scheme == "s3":
            out.append(f"s3://{parsed.bucket}/{parsed.key}")
            continue
        folder, name = os.path.split(parsed.key)
        if name in ("", ".", ".."):
            out.append(os.path.realpath(parsed.key))
            continue
        if folder not in folders:
            folders[folder] = os.path.realpath(folder or ".")
        path = os.path.join(folders[folder], name)
        out.append(os.path.realpath(path) if os.path.islink(path) else path)
    return pa.array(out, pa.string())


def _member(values: pa.Array, value_set: pa.Array) -> np.ndarray:
    """values[i] in value_set, as booleans; nulls (uris that are not URIs) are never members."""
    found = pc.is_in(values, value_set=pc.drop_null(value_set), skip_nulls=True)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def _folders(uris: pa.Array) -> pa.Array:
    """The folder of each uri (s3://b/k/x.jpg -> s3://b/k/, a/b.jpg -> a/, x.jpg -> ./); later resolved once
    per distinct folder. A file:// URI is parsed first, as fetch reads it: its query or fragment is not
    part of the path (file:///scans/b0.jpg#/x/ is /scans/b0.jpg, in /scans), nor is a %2F a separator
    until decoded. Plain paths and S3 keys are taken as spelt ('#' and '?' are name characters there)."""
    uris = _array(uris)
    folders = pc.replace_substring_regex(uris, r"[^/]*$", "")  # keep through the last '/'
    is_file_uri = pc.fill_null(pc.match_substring_regex(uris, r"^file:", ignore_case=True), False)
    if not pc.any(is_file_uri).as_py():
        return folders
    parsed = [
        _parsed_folder(uri) if file_uri else folder
        for uri, folder, file_uri in zip(
            uris.to_pylist(), folders.to_pylist(), is_file_uri.to_pylist(), strict=True
        )
    ]
    return pa.array(parsed, pa.string())


def _parsed_folder(uri: str) -> str | None:
    try:
        return os.path.dirname(parse_uri(uri).key) + "/"
    except StorageError:
        return None  # not a URI: fetch fails that row with the reason


def _repeats(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(rows whose non-null value appeared in an earlier row, the row of that first appearance)."""
    codes = (
        pc.fill_null(pc.index_in(values, value_set=pc.drop_null(pc.unique(values))), -1)
        .to_numpy()
        .astype(np.int64)
    )
    rows = np.arange(len(codes))
    first = np.full(codes.max(initial=-1) + 1, len(codes), np.int64)
    np.minimum.at(first, codes[codes >= 0], rows[codes >= 0])
    first_of = np.where(codes >= 0, first[np.maximum(codes, 0)] if len(first) else 0, rows)
    return first_of != rows, first_of


def _self_and_ancestors(target: str) -> list[str]:
    """'/a/b' -> ['/a/b', '/a', '/']; 's3://b/k/x' -> ['s3://b/k/x', 's3://b/k', 's3://b']."""
    out = [target]
    floor = len("s3://") if target.startswith("s3://") else 0
    while "/" in target[floor:]:
        target = target[: target.rindex("/")]
        out.append(target or "/")
        if not target:
            break
    return out
