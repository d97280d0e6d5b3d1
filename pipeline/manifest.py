"""The Parquet tables a restoration run reads and writes: the input manifest, result parts and final results.

Input manifest: one row per image, column ``uri`` (s3://bucket/key, local path or file:// URI), optional
``id`` (string, defaults to the uri) and any other columns, which are carried into the results untouched.

Results live under the run's output prefix: workers append small immutable parts at
``<prefix>/_results/part-<ns timestamp>-<random>.parquet`` and ``finalize_results`` folds them into
``<prefix>/results.parquet``, one row per manifest row in manifest order. A run that dies leaves whole parts
behind (each written atomically), so resuming means processing the manifest rows without an 'ok' row.
Reading, planning and finalising are columnar (pyarrow.compute), with no per-row Python; only
build_manifest touches rows one by one, as the listing delivers them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from model.formats import IMAGE_EXTENSIONS
from pipeline.storage import ObjectInfo, Storage, StorageError

STATUSES = ("ok", "failed", "skipped")
NOT_PROCESSED = "not processed (run interrupted or limited)"
RESULTS_DIR = "_results"
RESULTS_FILE = "results.parquet"
MODEL_METADATA = "patina.model"  # results.parquet metadata key: which model and look made the outputs
T = TypeVar("T")
# Reading parts is latency-bound on S3 (one GET each), so several are fetched at once.
READ_THREADS = 16

# What build_manifest writes. ``mtime`` is a UTC timestamp in microseconds (S3 LastModified or file mtime);
# ``etag`` is S3's ETag without quotes, null for local files (hashing every file would cost a full read).
MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("size", pa.int64()),
        pa.field("etag", pa.string()),
        pa.field("mtime", pa.timestamp("us", tz="UTC")),
    ]
)

# The fixed columns of every result row; results.parquet adds the manifest's extra columns after them.
# ``error`` is one line (null when ok); ``output_uri``, ``output_sha256`` and ``input_etag`` are null where
# there is none (a failed row); ``input_etag`` is the sha256 hex of the bytes read, wherever they came from;
# ``elapsed_ms`` is wall time for this image; ``defect_coverage`` is the fraction of pixels (0-1) the model
# marked as defects. width/height are the output image's pixels (a multi-page TIFF's first page), 0 when the
# image failed; ``pages`` is how many pages the output holds (1 but for multi-page TIFFs, 0 when failed).
# ``tone`` is the global tone correction applied with ``--tone auto`` (model.tone.physics.ToneCorrection as
# JSON: what the estimator read, and the strength used), null when the tone was kept.
RESULT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("uri", pa.string()),
        ("output_uri", pa.string()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("input_etag", pa.string()),
        ("output_sha256", pa.string()),
        ("model_id", pa.string()),
        ("elapsed_ms", pa.float64()),
        ("defect_coverage", pa.float32()),
        ("pages", pa.int32()),
        ("tone", pa.string()),
    ]
)
# Result columns added since the first results were written: parts written before them (and rows made by
# hand) lack them, and read as null there, so a resume over an older output prefix goes on.
ADDED_RESULT_COLUMNS = frozenset({"pages", "tone"})

# What the input was when its row was restored (the manifest's size and mtime then): kept in result parts
# beside RESULT_SCHEMA, so a resume redoes a row whose input changed since instead of keeping a stale output
# (results.parquet then joins the manifest's current values, which describe the new restoration).
INPUT_IDENTITY = pa.schema([("input_size", pa.int64()), ("input_mtime", pa.timestamp("us", tz="UTC"))])

# Photo formats a scan archive may hold that no decoder here restores (without losing depth): listed by
# build_manifest as left out, never silently.
UNRESTORED_IMAGE_EXTENSIONS = frozenset(
    (
        ".avif",
        ".heic",
        ".heif",
        ".jxl",
        ".dng",
        ".cr2",
        ".cr3",
        ".nef",
        ".arw",
        ".orf",
        ".raf",
        ".rw2",
        ".psd",
    )
)

# What a manifest uri may look like when it has a scheme; anything without '://' is a local path.
_URI_FORM = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.+|file://(localhost)?/.+)$"


class ManifestError(ValueError):
    """A manifest or results table a user supplied (or left behind) is unusable; the message is one line."""


@dataclass(frozen=True)
class Plan:
    """What a (resumed) run still has to do: ``todo`` holds the manifest rows without an 'ok' result;
    ``models`` the model ids of the 'ok' rows already under the prefix (one prefix, one model)."""

    total: int
    done: int
    todo: pa.Table
    models: frozenset[str] = frozenset()


def read_manifest(uri: str, storage: Storage) -> pa.Table:
    """Read and validate an input manifest; see validate_manifest for what comes back."""
    try:
        data = storage.read_bytes(uri)
    except StorageError as exc:
        raise ManifestError(f"cannot read manifest: {exc}") from None
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowException, OSError) as exc:
        raise ManifestError(f"{uri}: not a readable Parquet file ({one_line(exc)})") from None
    return validate_manifest(table, uri)


def validate_manifest(table: pa.Table, source: str = "manifest") -> pa.Table:
    """Check a manifest table and return it as ``id, uri, <extra columns>`` with string ids and uris.

    Raises ManifestError (naming ``source`` and the first offending row) for a missing ``uri`` column,
    null/empty or unsupported uris, null/empty or duplicate ids, or an extra column whose name a result
    column already uses."""
    if "uri" not in table.column_names:
        raise ManifestError(f"{source}: no 'uri' column (columns: {', '.join(table.column_names) or 'none'})")
    if table.num_rows == 0:
        raise ManifestError(f"{source}: the manifest has no rows; nothing to restore")
    clashes = sorted(set(table.column_names) & set(RESULT_SCHEMA.names) - {"id", "uri"})
    if clashes:
        raise ManifestError(
            f"{source}: column(s) {', '.join(clashes)} clash with result columns; rename them"
        )
    uris = _as_strings(table["uri"], source, "uri")
    _refuse(source, "empty or null uri", uris, _empty(uris))
    unsupported = pc.and_(
        pc.match_substring(uris, "://"), pc.invert(pc.match_substring_regex(uris, _URI_FORM))
    )
    _refuse(source, "unsupported uri (use s3://bucket/key, file:///path or a path)", uris, unsupported)
    ids = _as_strings(table["id"], source, "id") if "id" in table.column_names else uris
    _refuse(source, "empty or null id", uris, _empty(ids))
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
        first = pc.index(pc.is_in(ids, value_set=repeated), True).as_py()
        name = "id" if "id" in table.column_names else "uri (used as id)"
        raise ManifestError(
            f"{source}: duplicate {name} {ids[first].as_py()!r} (row {first}); ids must be unique"
        )
    extras = [name for name in table.column_names if name not in ("id", "uri")]
    return pa.Table.from_arrays([ids, uris, *(table[n] for n in extras)], names=["id", "uri", *extras])


def build_manifest(
    source_uri: str,
    out_uri: str,
    storage: Storage,
    extensions: tuple[str, ...] = IMAGE_EXTENSIONS,
    chunk_rows: int = 100_000,
    left_out: dict[str, int] | None = None,
) -> int:
    """List the images under an S3 prefix or local folder and write them as a manifest (MANIFEST_SCHEMA) to
    ``out_uri``; returns the row count. Memory stays bounded: the listing streams into a local Parquet file
    ``chunk_rows`` rows at a time, which is then uploaded (multipart when large) or moved into place.
    ``left_out`` (when given) counts, per extension, the photos in formats patina does not restore
    (AVIF, HEIC, camera raw, ...), so they are left out with a word rather than silently."""
    with tempfile.TemporaryDirectory(prefix="patina-manifest-") as tmp:
        local = os.path.join(tmp, "manifest.parquet")
        rows = 0

        wanted = {"." + e.lower().lstrip(".") for e in extensions}

        def images() -> Iterator[ObjectInfo]:
            for info in storage.list(source_uri, None if left_out is not None else extensions):
                ext = os.path.splitext(info.uri)[1].lower()
                if ext in wanted:
                    yield info
                elif left_out is not None and ext in UNRESTORED_IMAGE_EXTENSIONS:
                    left_out[ext] = left_out.get(ext, 0) + 1

        with pq.ParquetWriter(local, MANIFEST_SCHEMA, compression="zstd") as writer:
            for chunk in _batched(images(), chunk_rows):
                writer.write_table(_manifest_chunk(chunk))
                rows += len(chunk)
        if rows == 0:
            wanted = " ".join(e.lstrip(".") for e in extensions)
            raise ManifestError(f"{source_uri}: no images ({wanted}) found; check the prefix or folder")
        storage.write_file(out_uri, local, content_type="application/vnd.apache.parquet")
    return rows


def write_result_part(prefix_uri: str, table: pa.Table, storage: Storage) -> str:
    """Write result rows as a new immutable part under ``<prefix>/_results/`` and return its URI.

    ``table`` needs every RESULT_SCHEMA column (castable types, valid statuses, non-null ids); other columns
    are dropped, since the manifest carries them and finalize_results joins them back. Part names start
    with the wall-clock time in ns so that sorting them by name orders them by when they were written."""
    part = conform_results(table)
    for field in INPUT_IDENTITY:
        if field.name in table.column_names:
            part = part.append_column(field, table[field.name].cast(field.type))
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.parquet"
    uri = storage.join(prefix_uri, RESULTS_DIR, name)
    sink = pa.BufferOutputStream()
    pq.write_table(part, sink, compression="zstd")
    storage.write_bytes(uri, sink.getvalue().to_pybytes(), content_type="application/vnd.apache.parquet")
    return uri


def read_results(prefix_uri: str, storage: Storage, columns: list[str] | None = None) -> pa.Table:
    """All result parts under ``prefix_uri`` concatenated, oldest part first; an empty RESULT_SCHEMA table
    (restricted to ``columns``) when there are none."""
    columns = list(columns or RESULT_SCHEMA.names)
    unknown = [c for c in columns if c not in RESULT_SCHEMA.names]
    if unknown:
        known = ", ".join(RESULT_SCHEMA.names)
        raise ManifestError(f"unknown result column(s) {', '.join(unknown)}; known: {known}")
    schema = pa.schema([RESULT_SCHEMA.field(c) for c in columns])
    parts = _read_parts(prefix_uri, storage, columns, _empty_as_null)
    return pa.concat_tables(parts) if parts else schema.empty_table()


def plan_remaining(manifest: pa.Table, prefix_uri: str, storage: Storage) -> Plan:
    """Split a validated manifest into done (some part has an 'ok' row for its id) and todo (never seen, or
    only failed/skipped so far, or ok for an input that changed since). Reads just the id, status, model_id
    and input identity columns of the parts and keeps only the ok rows' ids and identities and the models
    that made them."""
    _require_ids(manifest)

    def ok_rows(part: pa.Table) -> tuple[pa.Table, set[str]]:
        ok = part.filter(pc.equal(part["status"], "ok"))
        # The pipeline always records a model id; a null one (a hand-made part) names no model to compare.
        return ok.drop_columns(["status", "model_id"]), set(pc.unique(ok["model_id"]).drop_null().to_pylist())

    columns = ["id", "status", "model_id", *INPUT_IDENTITY.names]
    parts = _read_parts(prefix_uri, storage, columns, ok_rows)
    if parts:  # older parts carry no identity: their columns come out null, which never reads as changed
        ok = pa.concat_tables([t for t, _ in parts], promote_options="default")
        value_set = ok.filter(pc.invert(_changed_since(ok, manifest)))["id"].combine_chunks()
    else:
        value_set = pa.array([], pa.string())
    todo = manifest.filter(pc.invert(pc.is_in(manifest["id"], value_set=value_set)))
    models = frozenset().union(*(m for _, m in parts))
    return Plan(total=manifest.num_rows, done=manifest.num_rows - todo.num_rows, todo=todo, models=models)


def _changed_since(ok: pa.Table, manifest: pa.Table) -> pa.Array:
    """Per ok row: whether the manifest now gives its input another size or mtime than when it was restored
    (False where either side does not say: older parts, manifests without those columns)."""
    changed = pa.array(np.zeros(ok.num_rows, bool))
    now = _manifest_identity(manifest)
    if not now or not any(name in ok.column_names for name in now):
        return changed
    rows = pc.index_in(ok["id"], value_set=manifest["id"].combine_chunks())
    for name, values in now.items():
        if name in ok.column_names:
            differs = pc.fill_null(pc.not_equal(pc.take(values, rows), ok[name]), False)
            changed = pc.or_(changed, differs)
    return changed


def _manifest_identity(manifest: pa.Table) -> dict[str, pa.Array]:
    """The manifest's size and mtime as INPUT_IDENTITY columns; a hand-made manifest's column of another
    type is left out (it says nothing about a change), not an error."""
    out = {}
    for name, field in zip(("size", "mtime"), INPUT_IDENTITY, strict=True):
        if name in manifest.column_names:
            try:
                out[field.name] = manifest[name].combine_chunks().cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                continue
    return out


@dataclass(frozen=True)
class InputIdentity:
    """The rows to do's INPUT_IDENTITY, looked up by id: the job attaches it to each batch of results it
    records (``attach``), at the cost of that batch alone."""

    positions: dict[str, int]
    columns: dict[str, pa.Array]

    @classmethod
    def of(cls, todo: pa.Table) -> InputIdentity | None:
        columns = _manifest_identity(todo)
        if not columns:
            return None
        return cls({row_id: i for i, row_id in enumerate(todo["id"].to_pylist())}, columns)

    def attach(self, rows: pa.Table) -> pa.Table:
        where = pa.array([self.positions.get(i) for i in rows["id"].to_pylist()], pa.int64())
        for name, values in self.columns.items():
            rows = rows.append_column(name, pc.take(values, where))
        return rows


_RESULT_COPY_PREFIX = "patina-results-"  # + the writing process's pid: the local copy finalize uploads


def remove_stale_result_copies() -> int:
    """Delete the local copies of results.parquet that a finalize killed mid-write left in the temp folder
    (a TemporaryDirectory cannot clean up after SIGKILL; for an archive of millions of rows each is large):
    those whose process no longer exists. Returns how many."""
    removed = 0
    for entry in os.scandir(tempfile.gettempdir()):
        name = entry.name
        if not (entry.is_dir(follow_symlinks=False) and name.startswith(_RESULT_COPY_PREFIX)):
            continue
        pid = name[len(_RESULT_COPY_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or process_exists(int(pid)):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def process_exists(pid: int) -> bool:
    """Whether a process with this pid lives on this host (signal 0 probes without signalling)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def refuse_other_models(plan: Plan, output: str, model_id: str) -> None:
    """One output prefix, one model: resuming with another model would mix two models' restorations under
    one results manifest (and skip the rows the first one did). A ValueError: the user's to fix, never
    retried."""
    others = plan.models - {model_id}
    if others:
        raise ValueError(
            f"{output}: already holds images restored by model {sorted(others)[0]}, not {model_id}; "
            "resume with that model or choose a new output prefix"
        )


def finalize_results(
    manifest: pa.Table, prefix_uri: str, storage: Storage, model: dict[str, Any] | None = None
) -> pa.Table:
    """Fold all parts into ``<prefix>/results.parquet`` and return it: one row per manifest row, in manifest
    order, with RESULT_SCHEMA columns then the manifest's extra columns. ``manifest`` is what read_manifest
    or validate_manifest returned (unique string ids). ``model`` (family, era or reference, parameters) is
    stored once as the file's ``patina.model`` metadata (JSON), not on every row.

    Per id, an 'ok' row beats any other, and otherwise the latest row wins (later part, then later row), so
    failed-then-ok retries and parts duplicated by a crash resolve cleanly. Manifest rows never attempted get
    status 'skipped' with error NOT_PROCESSED; the manifest's id and uri always win over the parts'. Result
    rows for ids outside the manifest are ignored."""
    _require_ids(manifest)
    results = read_results(prefix_uri, storage)
    n = results.num_rows
    # Match strings once: each result row's manifest row (null for ids outside the manifest). From here on
    # the work is on integers, which group and scatter far faster than millions of strings.
    position = pc.index_in(results["id"], value_set=manifest["id"])
    # A rank unique per row: ok rows above all others, then later rows above earlier ones (rank % n = row).
    is_ok = pc.equal(results["status"], "ok").to_numpy().astype(np.int64)
    keyed = pa.table({"position": position, "rank": is_ok * n + np.arange(n, dtype=np.int64)})
    best = keyed.filter(position.is_valid()).group_by("position").aggregate([("rank", "max")])
    row = np.full(manifest.num_rows, -1, dtype=np.int64)
    row[best["position"].to_numpy()] = best["rank_max"].to_numpy() % max(n, 1)
    attempted = row >= 0
    # id and uri come from the manifest, so they are not gathered (strings are the costly columns to take).
    picked = results.drop_columns(["id", "uri"]).take(pa.array(row, mask=~attempted))

    columns = []
    for field in RESULT_SCHEMA:
        column = manifest[field.name] if field.name in ("id", "uri") else picked[field.name]
        if field.name == "status":
            column = pc.if_else(attempted, column, pa.scalar("skipped"))
        elif field.name == "error":
            column = pc.if_else(attempted, column, pa.scalar(NOT_PROCESSED))
        columns.append(column)
    extras = [name for name in manifest.column_names if name not in ("id", "uri")]
    final = pa.Table.from_arrays(
        [*columns, *(manifest[name] for name in extras)], names=[*RESULT_SCHEMA.names, *extras]
    )
    if model is not None:
        final = final.replace_schema_metadata({MODEL_METADATA: json.dumps(model, sort_keys=True)})
    remove_stale_result_copies()
    with tempfile.TemporaryDirectory(prefix=f"{_RESULT_COPY_PREFIX}{os.getpid()}-") as tmp:
        local = os.path.join(tmp, RESULTS_FILE)
        pq.write_table(final, local, compression="zstd")
        storage.write_file(storage.join(prefix_uri, RESULTS_FILE), local, "application/vnd.apache.parquet")
    return final


def _read_parts(
    prefix_uri: str, storage: Storage, columns: list[str], transform: Callable[[pa.Table], T]
) -> list[T]:
    """Read ``columns`` of every part (oldest first) and apply ``transform`` to each as it arrives, so only
    what transform keeps stays in memory."""
    listing = storage.list(storage.join(prefix_uri, RESULTS_DIR), extensions=(".parquet",))
    uris = sorted(
        (o.uri for o in listing if os.path.basename(o.uri).startswith("part-")), key=os.path.basename
    )

    def read(uri: str) -> T:
        try:
            data = pa.BufferReader(storage.read_bytes(uri))
            present = set(pq.read_schema(data).names)
            data.seek(0)
            # A result column a part lacks fails it as unreadable, but for those added since it was written.
            required = set(RESULT_SCHEMA.names) - ADDED_RESULT_COLUMNS
            wanted = [c for c in columns if c in present or c in required]
            part = _with_added_columns(pq.read_table(data, columns=wanted), columns)
        except (pa.ArrowException, OSError) as exc:
            raise ManifestError(
                f"{uri}: unreadable result part ({one_line(exc)}); delete it to redo its rows"
            ) from None
        fields = {f.name: f for f in (*RESULT_SCHEMA, *INPUT_IDENTITY)}
        return transform(part.cast(pa.schema([fields[c] for c in part.column_names])))

    if not uris:
        return []
    with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(uris))) as pool:
        return list(pool.map(read, uris))


def _require_ids(manifest: pa.Table) -> None:
    if "id" not in manifest.column_names or not pa.types.is_string(manifest.schema.field("id").type):
        raise ManifestError("manifest has no string 'id' column; load it with read_manifest first")


_EMPTY_IS_NULL = ("error", "output_uri", "output_sha256", "input_etag", "tone")


def _empty_as_null(table: pa.Table) -> pa.Table:
    """The stages write "" for "none" (a plain string column through Ray); results say it with null, so a
    failed row reads alike whether a stage or the planner (refused collisions) recorded it, and parts
    written before results said so read like new ones."""
    for name in _EMPTY_IS_NULL:
        if name in table.column_names:
            column = table[name]
            table = table.set_column(
                table.schema.get_field_index(name),
                name,
                pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column),
            )
    return table


def _with_added_columns(table: pa.Table, columns: Iterable[str]) -> pa.Table:
    """``table`` with the ADDED_RESULT_COLUMNS among ``columns`` that it lacks, as nulls, in the order of
    ``columns`` (then any others it has)."""
    for name in columns:
        if name in ADDED_RESULT_COLUMNS and name not in table.column_names:
            table = table.append_column(
                RESULT_SCHEMA.field(name), pa.nulls(table.num_rows, RESULT_SCHEMA.field(name).type)
            )
    order = [c for c in columns if c in table.column_names]
    return table.select([*order, *(c for c in table.column_names if c not in order)])


def conform_results(table: pa.Table) -> pa.Table:
    """Result rows as RESULT_SCHEMA says (its columns, in order, cast; others dropped), with an empty error,
    output, digest or ETag read as none (null). The one place rows are shaped, by the job as they arrive and
    again by write_result_part for rows from anywhere; bad rows raise ManifestError."""
    table = _with_added_columns(table, RESULT_SCHEMA.names)
    missing = [name for name in RESULT_SCHEMA.names if name not in table.column_names]
    if missing:
        raise ManifestError(f"result rows lack column(s) {', '.join(missing)}")
    try:
        part = table.select(RESULT_SCHEMA.names).cast(RESULT_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ManifestError(f"result rows do not fit RESULT_SCHEMA ({one_line(exc)})") from None
    part = _empty_as_null(part)
    ids = part["id"]
    _refuse("result rows", "null id", ids, ids.is_null())
    statuses = part["status"]
    _refuse("result rows", f"status not in {STATUSES}", statuses, pc.invert(_in(statuses, STATUSES)))
    return part


def _manifest_chunk(objects: list[ObjectInfo]) -> pa.Table:
    uris = pa.array([o.uri for o in objects], pa.string())
    mtime_us = pa.array([round(o.mtime * 1_000_000) for o in objects], pa.int64())
    return pa.Table.from_arrays(
        [
            uris,
            uris,
            pa.array([o.size for o in objects], pa.int64()),
            pa.array([o.etag for o in objects], pa.string()),
            mtime_us.cast(MANIFEST_SCHEMA.field("mtime").type),
        ],
        schema=MANIFEST_SCHEMA,
    )


def _as_strings(column: pa.ChunkedArray, source: str, name: str) -> pa.ChunkedArray:
    """Ids may be integers in hand-made manifests; they become strings. A uri must be text: an integer is
    no path, and taking it as one would report a confusing failure per row. Other types are refused."""
    kind = column.type
    if pa.types.is_dictionary(kind):  # pandas' category, Spark's dictionary pages: the values are what count
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_string(kind):
        return column
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return column.cast(pa.string())
    if pa.types.is_integer(kind) and name != "uri":
        return column.cast(pa.string())
    raise ManifestError(f"{source}: column '{name}' has type {kind}; expected strings")


def _empty(strings: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.equal(pc.utf8_length(strings), 0), True)


def _in(values: pa.ChunkedArray, allowed: Iterable[str]) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_in(values, value_set=pa.array(list(allowed), pa.string())), False)


def _refuse(source: str, problem: str, values: pa.ChunkedArray, bad: pa.ChunkedArray) -> None:
    """Raise ManifestError naming the first row where ``bad`` is true, if any."""
    first = pc.index(bad, True).as_py()
    if first >= 0:
        raise ManifestError(f"{source}: {problem} at row {first} ({values[first].as_py()!r})")


def _batched(items: Iterable[ObjectInfo], size: int) -> Iterator[list[ObjectInfo]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def one_line(exc: BaseException) -> str:
    """An exception as the one line a failed row records: its message's first line, or its type's name."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
