"""Manifests, result parts, resume planning and finalisation against moto's S3 server and local folders."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.manifest import (
    MANIFEST_SCHEMA,
    NOT_PROCESSED,
    RESULT_SCHEMA,
    RESULTS_DIR,
    ManifestError,
    build_manifest,
    conform_results,
    finalize_results,
    plan_remaining,
    read_manifest,
    read_results,
    validate_manifest,
    write_result_part,
)
from pipeline.storage import Storage


@pytest.fixture(params=["local", "s3"])
def place(request, tmp_path, s3_server):
    """(storage, prefix URI) of an empty output place."""
    if request.param == "local":
        return Storage(), str(tmp_path / "run")
    return s3_server.storage(), f"s3://{s3_server.create_bucket()}/run"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def results(ids: list[str], status: str, error: str | None = None, **extra) -> pa.Table:
    """Result rows as a worker would produce them (RESULT_SCHEMA plus whatever extra columns it passes)."""
    n = len(ids)
    ok = status == "ok"
    columns = {
        "id": ids,
        "uri": [f"s3://archive/{i}.tif" for i in ids],
        "output_uri": [f"s3://out/{i}.png" if ok else None for i in ids],
        "status": [status] * n,
        "error": [None if ok else error or "decode failed"] * n,
        "width": [640 if ok else None] * n,
        "height": [480 if ok else None] * n,
        "input_etag": ["abc"] * n,
        "output_sha256": ["f" * 64 if ok else None for _ in ids],
        "model_id": ["patina-base@1"] * n,
        "elapsed_ms": [12.5] * n,
        "defect_coverage": [0.25 if ok else None] * n,
        **extra,
    }
    return pa.table(columns)


def archive_manifest(count: int) -> pa.Table:
    """A validated manifest of ``count`` images with two extra columns the results must carry."""
    table = pa.table(
        {
            "uri": [f"s3://archive/scans/{i:06d}.tif" for i in range(count)],
            "id": [f"img-{i}" for i in range(count)],
            "album": [f"album-{i % 3}" for i in range(count)],
            "year": pa.array([1900 + i for i in range(count)], pa.int16()),
        }
    )
    return validate_manifest(table)


# -- reading manifests ------------------------------------------------------------------------------------


def test_read_manifest_adds_ids_and_keeps_extra_columns(place):
    storage, root = place
    uri = storage.join(root, "manifest.parquet")
    storage.write_bytes(
        uri, parquet_bytes(pa.table({"album": ["a", "b"], "uri": ["/x/1.jpg", "s3://bkt/2.png"]}))
    )
    table = read_manifest(uri, storage)
    assert table.column_names == ["id", "uri", "album"]
    assert table["id"].to_pylist() == ["/x/1.jpg", "s3://bkt/2.png"]
    assert table["album"].to_pylist() == ["a", "b"]


def test_read_manifest_turns_integer_ids_into_strings(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({"uri": ["a.jpg", "b.jpg"], "id": pa.array([7, 8], pa.int64())}), path)
    assert read_manifest(str(path), Storage())["id"].to_pylist() == ["7", "8"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (pa.table({"uri": pa.array([], pa.string())}), "no rows; nothing to restore"),
        (pa.table({"uri": pa.array([1], pa.int64())}), "column 'uri' has type int64; expected strings"),
    ],
)
def test_empty_manifest_and_integer_uris_are_one_line_errors(tmp_path, table, message):
    path = tmp_path / "m.parquet"
    pq.write_table(table, path)
    with pytest.raises(ManifestError, match=message) as info:
        read_manifest(str(path), Storage())
    assert "\n" not in str(info.value)


def test_missing_or_non_parquet_manifest_is_a_one_line_error(place):
    storage, root = place
    missing = storage.join(root, "missing.parquet")
    with pytest.raises(ManifestError, match=r"cannot read manifest: .*not found"):
        read_manifest(missing, storage)
    text = storage.join(root, "notes.parquet")
    storage.write_bytes(text, b"uri\ns3://bkt/a.jpg\n")
    with pytest.raises(ManifestError, match="not a readable Parquet file") as err:
        read_manifest(text, storage)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"path": ["a.jpg"]}, "no 'uri' column \\(columns: path\\)"),
        ({"uri": ["a.jpg", None]}, "empty or null uri at row 1"),
        ({"uri": ["a.jpg", ""]}, "empty or null uri at row 1"),
        ({"uri": ["a.jpg", "http://example.com/b.jpg"]}, "unsupported uri .* at row 1 \\('http://"),
        ({"uri": ["s3://bkt/a.jpg", "s3://bkt"]}, "unsupported uri .* at row 1"),
        ({"uri": ["a.jpg", "b.jpg"], "id": ["x", None]}, "empty or null id at row 1"),
        ({"uri": ["a.jpg", "b.jpg", "c.jpg"], "id": ["x", "y", "y"]}, "duplicate id 'y' \\(row 1\\)"),
        ({"uri": ["a.jpg", "b.jpg", "b.jpg", "a.jpg"]}, "duplicate uri \\(used as id\\) 'a.jpg' \\(row 0\\)"),
        ({"uri": ["a.jpg"], "status": ["new"]}, "column\\(s\\) status clash with result columns"),
        ({"uri": [1.5]}, "column 'uri' has type double; expected strings"),
    ],
)
def test_bad_manifests_name_the_problem_and_row(tmp_path, columns, message):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table(columns), path)
    with pytest.raises(ManifestError, match=message) as err:
        read_manifest(str(path), Storage())
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


# -- building manifests -----------------------------------------------------------------------------------


@pytest.mark.parametrize("out", ["local", "s3"])
def test_build_manifest_from_s3(s3_server, tmp_path, out):
    storage, source = s3_server.storage(), s3_server.create_bucket()
    keys = ["scans/b.TIF", "scans/a.jpg", "scans/notes.txt", "scans/1950/c.webp", "scans/x.GIF", "scan/d.png"]
    for key in keys:
        storage.write_bytes(f"s3://{source}/{key}", key.encode())
    out_uri = str(tmp_path / "m.parquet") if out == "local" else f"s3://{s3_server.create_bucket()}/m.parquet"

    assert build_manifest(f"s3://{source}/scans", out_uri, storage, chunk_rows=2) == 4
    table = read_manifest(out_uri, storage)  # a built manifest is a valid input
    assert table.column_names == ["id", "uri", "size", "etag", "mtime"]
    assert table["mtime"].type == pa.timestamp("us", tz="UTC")
    expected = [f"s3://{source}/scans/{k}" for k in ["1950/c.webp", "a.jpg", "b.TIF", "x.GIF"]]
    assert table["uri"].to_pylist() == expected == table["id"].to_pylist()
    assert table["size"].to_pylist() == [len(u.split("/", 3)[3]) for u in expected]
    assert all(etag and '"' not in etag for etag in table["etag"].to_pylist())
    assert all(t.year >= 2024 for t in table["mtime"].to_pylist())


def test_build_manifest_from_local_folder(tmp_path):
    photos = tmp_path / "photos"
    (photos / "1960s").mkdir(parents=True)
    # Every extension of a format decode reads is listed (JPEG 2000 and .jfif were left out once).
    for name in ["b.png", "a.JPEG", "1960s/c.tiff", "readme.md", "1960s/d.bmp", "e.jp2", "f.jfif", "g.eps"]:
        (photos / name).write_bytes(b"12345")
    out = tmp_path / "out" / "manifest.parquet"

    assert build_manifest(str(photos), str(out), Storage()) == 6
    table = pq.read_table(out)
    assert table.schema.equals(MANIFEST_SCHEMA)
    expected = ["1960s/c.tiff", "1960s/d.bmp", "a.JPEG", "b.png", "e.jp2", "f.jfif"]
    assert table["uri"].to_pylist() == [str(photos / name) for name in expected]
    assert table["etag"].null_count == 6 and table["size"].to_pylist() == [5] * 6
    assert table["mtime"][0].as_py().timestamp() == pytest.approx((photos / "1960s/c.tiff").stat().st_mtime)
    assert sorted(os.listdir(out.parent)) == ["manifest.parquet"]  # no temp files left behind


def test_build_manifest_lists_links_to_missing_files_rather_than_dropping_them(tmp_path):
    # A dangling link is listed: its row then fails as "not found" where an archivist sees it; a link to a
    # folder is still not followed (a link back up the tree would loop forever).
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"12345")
    (photos / "gone.jpg").symlink_to(photos / "deleted.jpg")
    (photos / "loop").symlink_to(photos)
    out = tmp_path / "manifest.parquet"
    assert build_manifest(str(photos), str(out), Storage()) == 2
    assert pq.read_table(out)["uri"].to_pylist() == [str(photos / "a.jpg"), str(photos / "gone.jpg")]
    with pytest.raises(Exception, match="not found; check the path"):
        Storage().read_bytes(str(photos / "gone.jpg"))


def test_build_manifest_refuses_a_place_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    with pytest.raises(ManifestError, match=r"no images .*found"):
        build_manifest(str(tmp_path), str(tmp_path / "m.parquet"), Storage())
    assert not (tmp_path / "m.parquet").exists()


# -- result parts -----------------------------------------------------------------------------------------


def test_result_parts_round_trip_and_drop_extra_columns(place):
    storage, root = place
    assert read_results(root, storage).schema.equals(RESULT_SCHEMA)  # nothing written yet
    first = write_result_part(root, results(["a", "b"], "ok", album=["x", "y"]), storage)
    second = write_result_part(root, results(["c"], "failed", "truncated JPEG"), storage)
    assert first.startswith(storage.join(root, RESULTS_DIR, "part-")) and first.endswith(".parquet")
    assert first < second  # names sort in write order

    table = read_results(root, storage)
    assert table.schema.equals(RESULT_SCHEMA)
    assert table["id"].to_pylist() == ["a", "b", "c"]
    assert table["error"].to_pylist() == [None, None, "truncated JPEG"]
    assert read_results(root, storage, columns=["status", "id"]).column_names == ["status", "id"]
    # The stages say "none" with "" (a plain string column through Ray); results say it with null, as the
    # planner's refused rows do.
    staged, none = (
        results(["d"], "failed", "unreadable"),
        ["error", "output_uri", "output_sha256", "input_etag"],
    )
    for name in none:
        staged = staged.set_column(staged.schema.get_field_index(name), name, pa.array([""]))
    write_result_part(root, staged, storage)
    failed = read_results(root, storage).filter(pc.equal(pc.field("id"), "d"))
    assert [failed[name][0].as_py() for name in none] == [None] * 4
    # A part written before results said so (raw, as an older patina wrote it, before rows had ``pages``
    # and ``tone``) reads the same, its pages and tone unknown.
    sink = pa.BufferOutputStream()
    older = pa.schema([field for field in RESULT_SCHEMA if field.name not in ("pages", "tone")])
    pq.write_table(staged.set_column(0, "id", pa.array(["e"])).select(older.names).cast(older), sink)
    storage.write_bytes(storage.join(root, RESULTS_DIR, "part-zz-old.parquet"), sink.getvalue().to_pybytes())
    old = read_results(root, storage).filter(pc.equal(pc.field("id"), "e"))
    assert [old[name][0].as_py() for name in none] == [None] * 4
    assert old.schema.equals(RESULT_SCHEMA) and old["pages"][0].as_py() is None
    assert old["tone"][0].as_py() is None
    if not root.startswith("s3://"):
        assert all(name.startswith("part-") for name in os.listdir(storage.join(root, RESULTS_DIR)))


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (results(["a"], "ok").drop_columns(["model_id", "width"]), "lack column\\(s\\) width, model_id"),
        (results(["a"], "done"), "status not in"),
        (results(["a"], "ok").set_column(0, "id", pa.array([None], pa.string())), "null id at row 0"),
        (results(["a"], "ok").set_column(5, "width", pa.array(["wide"])), "do not fit RESULT_SCHEMA"),
    ],
)
def test_bad_result_rows_are_refused(tmp_path, table, message):
    with pytest.raises(ManifestError, match=message):
        write_result_part(str(tmp_path), table, Storage())
    assert not (tmp_path / RESULTS_DIR).exists()


def test_read_results_rejects_unknown_columns(tmp_path):
    with pytest.raises(ManifestError, match="unknown result column\\(s\\) colour"):
        read_results(str(tmp_path), Storage(), columns=["id", "colour"])


# -- resuming and finalising ------------------------------------------------------------------------------


def test_plan_remaining_counts_only_ok_rows_as_done(place):
    storage, root = place
    manifest = archive_manifest(10)
    assert plan_remaining(manifest, root, storage).todo.equals(manifest)  # a fresh run does everything

    write_result_part(root, results(["img-0", "img-1", "img-2"], "ok"), storage)
    write_result_part(root, results(["img-3", "img-4"], "failed"), storage)
    write_result_part(root, results(["img-4", "not-in-manifest"], "ok"), storage)  # img-4 retried
    plan = plan_remaining(manifest, root, storage)
    assert (plan.total, plan.done) == (10, 4)
    assert plan.todo["id"].to_pylist() == ["img-3", *(f"img-{i}" for i in range(5, 10))]
    assert plan.todo.column_names == manifest.column_names  # extra columns travel with the work
    assert plan.todo["year"].to_pylist() == [1903, *range(1905, 1910)]


def test_finalize_results_picks_one_row_per_input_in_manifest_order(place):
    storage, root = place
    manifest = archive_manifest(6)
    write_result_part(root, results(["img-1", "img-0"], "ok"), storage)
    write_result_part(root, results(["img-2", "img-3"], "failed", "first try"), storage)
    write_result_part(root, results(["img-2"], "ok"), storage)  # failed then ok on retry
    write_result_part(root, results(["img-3"], "failed", "second try"), storage)  # the latest failure wins
    write_result_part(root, results(["img-0"], "failed", "late duplicate"), storage)  # ok still wins
    write_result_part(root, results(["img-1"], "ok"), storage)  # a part written twice by a crash
    write_result_part(root, results(["stray"], "ok"), storage)

    final = finalize_results(manifest, root, storage)
    assert final.column_names == [*RESULT_SCHEMA.names, "album", "year"]
    assert final.select(RESULT_SCHEMA.names).schema.equals(RESULT_SCHEMA)
    assert final["id"].to_pylist() == [f"img-{i}" for i in range(6)]
    assert final["uri"].to_pylist() == manifest["uri"].to_pylist()  # the manifest's uri is authoritative
    assert final["status"].to_pylist() == ["ok", "ok", "ok", "failed", "skipped", "skipped"]
    assert final["error"].to_pylist() == [None, None, None, "second try", NOT_PROCESSED, NOT_PROCESSED]
    assert final["width"].to_pylist() == [640, 640, 640, None, None, None]
    assert final["album"].to_pylist() == manifest["album"].to_pylist()
    assert final["year"].type == pa.int16() and final["year"].to_pylist() == list(range(1900, 1906))

    stored = pq.read_table(pa.BufferReader(storage.read_bytes(storage.join(root, "results.parquet"))))
    assert stored.equals(final)


def test_finalize_without_any_parts_marks_everything_skipped(place):
    storage, root = place
    final = finalize_results(archive_manifest(3), root, storage)
    assert final["status"].to_pylist() == ["skipped"] * 3
    assert final["error"].to_pylist() == [NOT_PROCESSED] * 3
    assert storage.exists(storage.join(root, "results.parquet"))


def test_unreadable_part_is_named(tmp_path):
    (tmp_path / RESULTS_DIR).mkdir()
    (tmp_path / RESULTS_DIR / "part-0001-x.parquet").write_bytes(b"garbage")
    with pytest.raises(ManifestError, match=r"part-0001-x.parquet: unreadable result part .*delete it"):
        plan_remaining(archive_manifest(2), str(tmp_path), Storage())


def test_a_resume_redoes_a_row_whose_input_changed_since(tmp_path):
    # An input whose bytes changed (new size or mtime in the rebuilt manifest) must not keep its stale
    # output: its row is to do again. Rows without a recorded identity (older parts) stay done.
    from pipeline.manifest import InputIdentity

    storage, prefix = Storage(), str(tmp_path / "out")
    scans = tmp_path / "scans"
    scans.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (scans / name).write_bytes(b"\xff\xd8" + name.encode())
    manifest_uri = str(tmp_path / "m.parquet")
    build_manifest(str(scans), manifest_uri, storage)
    manifest = read_manifest(manifest_uri, storage)
    ok = pa.table(
        {
            "id": manifest["id"],
            "uri": manifest["uri"],
            "output_uri": [f"{prefix}/{i}.jpg" for i in range(3)],
            "status": ["ok"] * 3,
            "error": [None] * 3,
            "width": [1] * 3,
            "height": [1] * 3,
            "input_etag": ["e"] * 3,
            "output_sha256": ["s"] * 3,
            "model_id": ["m"] * 3,
            "elapsed_ms": [1.0] * 3,
            "defect_coverage": [0.0] * 3,
        }
    )
    rows = InputIdentity.of(manifest).attach(conform_results(ok))
    write_result_part(prefix, rows.slice(0, 2), storage)  # a and b: recorded with their size and mtime
    write_result_part(prefix, conform_results(ok).slice(2, 1), storage)  # c: an older part, no identity
    assert plan_remaining(manifest, prefix, storage).todo.num_rows == 0
    (scans / "b.jpg").write_bytes(b"\xff\xd8 a new scan of b, longer")  # b re-scanned in place
    (scans / "c.jpg").write_bytes(b"\xff\xd8 c changed too")
    build_manifest(str(scans), manifest_uri, storage)
    plan = plan_remaining(read_manifest(manifest_uri, storage), prefix, storage)
    assert [uri.rsplit("/", 1)[-1] for uri in plan.todo["uri"].to_pylist()] == ["b.jpg"]
    assert read_results(prefix, storage).column_names == RESULT_SCHEMA.names  # results keep their schema


def test_a_dictionary_encoded_uri_column_is_read_as_its_strings():
    uris = pa.array(["/scans/a.jpg", "/scans/b.jpg", "/scans/a2.jpg"]).dictionary_encode()
    table = validate_manifest(pa.table({"uri": uris, "id": pa.array([1, 2, 3]).dictionary_encode()}))
    assert table["uri"].type == pa.string() and table["uri"].to_pylist()[1] == "/scans/b.jpg"
    assert table["id"].to_pylist() == ["1", "2", "3"]


def test_a_results_copy_left_by_a_killed_finalize_is_removed(tmp_path, monkeypatch):
    import subprocess
    import sys
    import tempfile

    from pipeline.manifest import remove_stale_result_copies

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = int(
        subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
        ).stdout
    )
    killed = tmp_path / f"patina-results-{dead}-abc"
    killed.mkdir()
    (killed / "results.parquet").write_bytes(b"a big copy")
    live = tmp_path / f"patina-results-{os.getpid()}-def"  # a finalize in progress: kept
    live.mkdir()
    other = tmp_path / "someone-elses"
    other.mkdir()
    assert remove_stale_result_copies() == 1
    assert not killed.exists() and live.exists() and other.exists()
