"""Where outputs go (#9 items 2, 5, 7): a bad prefix is refused up front, rows that would overwrite an
original or another row's output are named before any work, and archives may span folders and buckets."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.batch.outputs import check_output_prefix, identity, output_uri, plan_collisions


def uris(*values: str) -> pa.Array:
    return pa.array(list(values), pa.string())


def ids(n: int) -> pa.Array:
    return pa.array([f"r{i}" for i in range(n)], pa.string())


def test_identity_spells_a_place_once(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    real = os.path.realpath(tmp_path / "real" / "a.jpg")
    spellings = [
        str(tmp_path / "real" / "a.jpg"),
        f"file://{tmp_path}/real/a.jpg",
        str(tmp_path / "link" / "a.jpg"),
        str(tmp_path / "real" / ".." / "real" / "a.jpg"),
    ]
    assert {identity(uri) for uri in spellings} == {real}
    assert identity("s3://bucket/scans/a.jpg") == "s3://bucket/scans/a.jpg"


@pytest.mark.parametrize("output", ["/", "/tmp/..", "file:///", "//"])
def test_the_filesystem_root_is_refused(output):
    with pytest.raises(ValueError, match="filesystem root"):
        check_output_prefix(uris("s3://bucket/scans/a.jpg"), output)


def test_archives_may_span_folder_trees_and_buckets(tmp_path):
    # The common ancestor of two trees is no input folder: a sibling output is fine (it was refused as
    # "inside the input folder /" or "invalid URI" before).
    manifest = uris(
        str(tmp_path / "trees" / "a" / "1.jpg"),
        str(tmp_path / "trees" / "b" / "deep" / "2.jpg"),
        "s3://first-bucket/scans/3.jpg",
        "s3://second-bucket/4.jpg",
    )
    check_output_prefix(manifest, str(tmp_path / "trees" / "restored"))
    check_output_prefix(manifest, "s3://first-bucket/restored")
    for inside in [tmp_path / "trees" / "b" / "deep" / "out", tmp_path / "trees" / "a"]:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(manifest, str(inside))
    for inside in ["s3://second-bucket/restored", "s3://first-bucket/scans/out"]:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(manifest, inside)


def test_no_alias_of_an_input_folder_slips_through(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    (tmp_path / "alias").symlink_to(scans)
    # (a) an output reached through a symlink, (b) file:// rows beside plain ones, a relative path.
    manifest = uris(str(scans / "a.jpg"), f"file://{scans}/b.jpg")
    for output in [str(tmp_path / "alias" / "out"), f"file://{scans}/out", str(scans / "x" / ".." / "out")]:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(manifest, output)
    cwd = os.getcwd()
    os.chdir(scans)
    try:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(uris("a.jpg"), str(scans / "out"))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("spelling", ["plain", "file"])
def test_one_spelling_of_an_archive_keeps_its_guard(tmp_path, spelling):
    # A manifest of only file:// rows (or only plain rows): no other row may be the one that finds the folder.
    scans = tmp_path / "scans"
    scans.mkdir()
    (tmp_path / "alias").symlink_to(scans)
    rows = [scans / "a.jpg", scans / "b.jpg"]
    manifest = uris(*(row.as_uri() if spelling == "file" else str(row) for row in rows))
    inside = [str(scans / "out"), (scans / "out").as_uri(), str(tmp_path / "alias" / "out")]
    for output in inside:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(manifest, output)
    for output in [str(tmp_path), tmp_path.as_uri()]:
        with pytest.raises(ValueError, match="contains the input folder"):
            check_output_prefix(manifest, output)
    check_output_prefix(manifest, str(tmp_path / "restored"))  # beside the archive: fine


@pytest.mark.parametrize("suffix", ["#/x/", "?v=/1/", "?a/b#c/d/"])
def test_a_file_uri_query_or_fragment_does_not_hide_its_folder(tmp_path, suffix):
    # fetch reads file:///scans/b0.jpg#/x/ as /scans/b0.jpg: the guard must see the same folder.
    scans = tmp_path / "scans"
    scans.mkdir()
    manifest = uris(f"{(scans / 'b0.jpg').as_uri()}{suffix}")
    for output in [str(scans), str(scans / "out")]:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(manifest, output)
    # A percent-encoded '/' is a separator once decoded, as fetch decodes it.
    encoded = uris(f"file://{tmp_path}/scans%2Fb0.jpg")
    with pytest.raises(ValueError, match="inside the input folder"):
        check_output_prefix(encoded, str(scans / "out"))


def test_rows_naming_the_same_file_restore_once(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "a.jpg").write_bytes(b"x")
    (scans / "link.jpg").symlink_to(scans / "a.jpg")
    manifest = uris(
        str(scans / "a.jpg"), str(scans / "a.jpg"), f"file://{scans}/a.jpg", str(scans / "link.jpg")
    )
    refused = plan_collisions(ids(4), manifest, str(tmp_path / "out"), "same")
    assert sorted(refused) == ["r1", "r2", "r3"]
    assert refused["r2"] == f"file://{scans}/a.jpg: same file as an earlier row (r0: {scans / 'a.jpg'})"


def test_rows_whose_outputs_would_collide_fail_instead(tmp_path):
    local = tmp_path / "data"
    # s3://<bucket>/x.jpg and the local file <bucket>/x.jpg (made here as a top folder's namesake) both map
    # to <prefix>/<that path>; a.jpg written as PNG lands on a.jpg.png, where the input a.jpg.png goes.
    top = str(tmp_path).strip("/").split("/")[0]
    manifest = uris(
        str(local / "a.jpg.png"),
        str(local / "a.jpg"),
        f"/{top}/x.jpg",
        f"s3://{top}/x.jpg" if len(top) >= 3 else "s3://tmp/x.jpg",
        str(local / "b.jpg"),
    )
    refused = plan_collisions(ids(5), manifest, str(tmp_path / "out"), "png")
    expected = str(local / "a.jpg.png").lstrip("/")
    assert (
        refused["r1"]
        == f"{local / 'a.jpg'}: output could collide with another row's ({expected}); rename one"
    )
    if len(top) >= 3:
        assert (
            refused["r3"]
            == f"s3://{top}/x.jpg: output shared with an earlier row (/{top}/x.jpg -> {top}/x.jpg)"
        )
    assert "r0" not in refused and "r4" not in refused and "r2" not in refused
    # With the input's own format nothing is appended for JPEG, but the PNG fallback still could be.
    assert "r1" in plan_collisions(ids(5), manifest, str(tmp_path / "out"), "same")
    assert "r1" not in plan_collisions(ids(5), manifest, str(tmp_path / "out"), "jpeg")


def test_an_output_that_would_overwrite_an_input_fails(tmp_path):
    # An input stored where the output of another input goes: <prefix>/<path of that input>.
    first = tmp_path / "a" / "1.png"
    mirrored = Path(str(tmp_path / "restored") + str(first))
    manifest = uris(str(first), str(mirrored))
    refused = plan_collisions(ids(2), manifest, str(tmp_path / "restored"), "same")
    assert refused == {"r0": f"{first}: its output would overwrite an input of this manifest"}


def test_bad_uris_are_left_to_fetch(tmp_path):
    manifest = uris("http://example.com/a.jpg", "gs://b/a.jpg", str(tmp_path / "a.jpg"))
    assert plan_collisions(ids(3), manifest, str(tmp_path / "out"), "png") == {}


def test_an_output_above_the_inputs_is_refused(tmp_path):
    # Outputs would land inside the archive's own tree, and a run's clean-up would walk the archive.
    manifest = uris(str(tmp_path / "archive" / "scans" / "a.jpg"), "s3://bucket/scans/b.jpg")
    for output in [str(tmp_path / "archive"), str(tmp_path), "s3://bucket", "s3://bucket/"]:
        with pytest.raises(ValueError, match="contains the input folder"):
            check_output_prefix(manifest, output)
    check_output_prefix(manifest, str(tmp_path / "archive-restored"))  # beside: fine


@pytest.mark.parametrize(
    ("uri", "prefix", "input_format", "output_format", "expected"),
    [
        ("s3://photos/a/b.jpg", "s3://out/run1", "JPEG", "same", "s3://out/run1/photos/a/b.jpg"),
        ("s3://photos/a/b.jpg", "s3://out/run1/", "JPEG", "jpeg", "s3://out/run1/photos/a/b.jpg"),
        ("s3://photos/b.jpg", "s3://out", "MPO", "same", "s3://out/photos/b.jpg"),
        ("s3://photos/scan.tif", "s3://out", "TIFF", "png", "s3://out/photos/scan.tif.png"),
        ("s3://photos/scan.png", "s3://out", "PNG", "png", "s3://out/photos/scan.png"),
        ("s3://photos/old.gif", "s3://out", "GIF", "same", "s3://out/photos/old.gif.png"),
        ("s3://photos/x.png", "s3://out", "PNG", "webp", "s3://out/photos/x.png.webp"),
        ("s3://photos/x.png", "s3://out", "PNG", "tiff", "s3://out/photos/x.png.tif"),
        ("s3://photos/x.png", "/srv/out", "PNG", "same", "/srv/out/photos/x.png"),
    ],
)
def test_output_uri_for_s3_inputs(uri, prefix, input_format, output_format, expected):
    assert output_uri(uri, prefix, input_format, output_format) == expected


def test_output_uri_for_local_inputs(tmp_path):
    src = tmp_path / "in" / "c.jpg"
    src.parent.mkdir()
    src.write_bytes(b"x")
    link = tmp_path / "link.jpg"
    link.symlink_to(src)
    real = os.path.realpath(src)
    expected = os.path.join(tmp_path, "out", real.lstrip("/"))

    assert output_uri(str(src), str(tmp_path / "out"), "JPEG", "same") == expected
    assert output_uri(str(link), str(tmp_path / "out"), "JPEG", "same") == expected
    assert output_uri(src.as_uri(), str(tmp_path / "out"), "JPEG", "same") == expected
    assert output_uri(str(src), "s3://out/p", "JPEG", "png") == f"s3://out/p/{real.lstrip('/')}.png"
    file_prefix = (tmp_path / "o ut").as_uri()  # file:// URIs stay percent-encoded
    assert output_uri(src.as_uri(), file_prefix, "JPEG", "same") == file_prefix + Path(real).as_uri()[7:]
    assert output_uri(str(src), str(tmp_path / "out"), "JPEG", "same") == expected  # deterministic


def test_output_uri_never_names_the_input(tmp_path):
    with pytest.raises(ValueError, match="would overwrite the input"):
        output_uri(str(tmp_path / "c.jpg"), "/", "JPEG", "same")
    with pytest.raises(ValueError, match="unknown output format 'gif'"):
        output_uri("s3://photos/a.jpg", "s3://out", "JPEG", "gif")


@pytest.mark.parametrize(
    "key", ["../../escape/evil.jpg", "scans/../../../evil.jpg", "scans/./a.jpg", "a/../b.jpg"]
)
def test_s3_keys_with_dot_segments_never_leave_the_output_prefix(tmp_path, key):
    # An S3 key is any string: '../' in it must not climb out of a local output prefix.
    prefix = tmp_path / "out"
    with pytest.raises(ValueError, match="path segments"):
        output_uri(f"s3://bucket/{key}", str(prefix), "JPEG", "same")


@pytest.mark.parametrize(
    "output", ["s3://bucket/out/../scans", "s3://bucket/./out", "s3://bucket/out//x", "~/restored", "~"]
)
def test_output_prefixes_that_do_not_mean_what_they_say_are_refused(output):
    with pytest.raises(ValueError, match=r"segment|only a shell expands"):
        check_output_prefix(uris("s3://bucket/scans/a.jpg"), output)


def test_an_output_through_a_missing_folder_and_dotdot_is_refused(tmp_path):
    (tmp_path / "scans").mkdir()
    manifest = uris(str(tmp_path / "scans" / "a.jpg"))
    with pytest.raises(ValueError, match="which does not exist, before its"):
        check_output_prefix(manifest, str(tmp_path / "missing" / ".." / "out"))
    (tmp_path / "here").mkdir()
    check_output_prefix(manifest, str(tmp_path / "here" / ".." / "out"))  # a real folder: fine
