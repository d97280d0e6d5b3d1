"""Storage against moto's real S3 HTTP server and real local folders."""

from __future__ import annotations

import os

import pytest

from pipeline import storage as storage_module
from pipeline.storage import ObjectInfo, Storage, StorageError, is_same_or_inside, parse_uri


@pytest.fixture(params=["local", "file", "s3"])
def place(request, tmp_path, s3_server):
    """(storage, prefix URI) for an empty place in each form a user may write."""
    if request.param == "local":
        return Storage(), str(tmp_path / "root")
    if request.param == "file":
        return Storage(), (tmp_path / "ro ot").as_uri()  # a space: file:// URIs are percent-encoded
    return s3_server.storage(), f"s3://{s3_server.create_bucket()}/root"


# -- URIs ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b.tif", ("s3", "bucket", "a/b.tif")),
        ("s3://my.bucket-1", ("s3", "my.bucket-1", "")),
        ("/data/scans/x.jpg", ("file", None, "/data/scans/x.jpg")),
        ("relative/x.jpg", ("file", None, "relative/x.jpg")),
        ("file:///data/my%20scans/x.jpg", ("file", None, "/data/my scans/x.jpg")),
        ("file://localhost/data/x.jpg", ("file", None, "/data/x.jpg")),
    ],
)
def test_parse_uri(uri, expected):
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.bucket, parsed.key) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "http://example.com/x.jpg",
        "gs://bucket/x",
        "s3://",
        "s3:///key",
        "s3://No_Such/x",
        "",
        "file://host/x",
    ],
)
def test_invalid_uris_are_refused_with_one_line(uri):
    with pytest.raises(StorageError, match="invalid URI") as err:
        parse_uri(uri)
    assert "\n" not in str(err.value)


def test_object_calls_refuse_a_bare_bucket(s3_server):
    with pytest.raises(StorageError, match="names a bucket, not an object"):
        s3_server.storage().read_bytes("s3://some-bucket/")


@pytest.mark.parametrize(
    ("child", "parent", "inside"),
    [
        ("s3://b1b/out", "s3://b1b/out/", True),
        ("s3://b1b/out/restored", "s3://b1b/out", True),
        ("s3://b1b/out-old", "s3://b1b/out", False),
        ("s3://b1b/any/thing", "s3://b1b", True),
        ("s3://b2b/out", "s3://b1b/out", False),
        ("s3://b1b/out", "/b1b/out", False),
    ],
)
def test_is_same_or_inside_s3(child, parent, inside):
    assert is_same_or_inside(child, parent) is inside


def test_is_same_or_inside_local_resolves_paths(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    assert is_same_or_inside(str(tmp_path / "in" / "sub" / ".."), str(tmp_path / "in"))
    assert is_same_or_inside(str(tmp_path / "link" / "sub"), (tmp_path / "in").as_uri())
    assert is_same_or_inside(str(tmp_path / "in" / "new" / "deeper"), str(tmp_path / "in"))
    assert not is_same_or_inside(str(tmp_path / "in-old"), str(tmp_path / "in"))
    assert not is_same_or_inside(str(tmp_path), str(tmp_path / "in"))


def test_join():
    assert Storage.join("s3://b1b/out/", "_results", "p.parquet") == "s3://b1b/out/_results/p.parquet"
    assert Storage.join("s3://b1b", "x") == "s3://b1b/x"
    assert Storage.join("/data/out", "_results/", "/p.parquet") == "/data/out/_results/p.parquet"
    assert Storage.join("file:///data/my%20out/", "a b.png") == "file:///data/my%20out/a%20b.png"


# -- objects ---------------------------------------------------------------------------------------------


def test_write_read_info_delete_round_trip(place):
    storage, root = place
    uri = storage.join(root, "deep", "er", "photo.tif")
    assert not storage.exists(uri)
    storage.write_bytes(uri, b"first", content_type="image/tiff")
    storage.write_bytes(uri, b"second version")
    assert storage.read_bytes(uri) == b"second version"
    assert storage.exists(uri)
    info = storage.info(uri)
    assert (info.uri, info.size) == (uri, len(b"second version"))
    assert isinstance(info.mtime, float) and info.mtime > 1.6e9
    if root.startswith("s3://"):
        assert info.etag and '"' not in info.etag
    else:
        assert info.etag is None
    storage.delete(uri)
    storage.delete(uri)  # already gone: not an error
    assert not storage.exists(uri)


def test_missing_object_is_a_one_line_not_found(place):
    storage, root = place
    uri = storage.join(root, "missing.png")
    for call in (storage.read_bytes, storage.info):
        with pytest.raises(StorageError, match="not found") as err:
            call(uri)
        assert uri in str(err.value) and "\n" not in str(err.value)


def test_missing_bucket_says_so(s3_server):
    storage = s3_server.storage()
    with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
        storage.read_bytes("s3://no-such-bucket/x.png")
    assert not storage.exists("s3://no-such-bucket/x.png")  # HEAD replies carry no error code to tell
    with pytest.raises(StorageError, match="does not exist"):
        list(storage.list("s3://no-such-bucket/scans"))
    with pytest.raises(StorageError, match="does not exist"):
        storage.write_bytes("s3://no-such-bucket/x.png", b"x")


def test_local_folder_is_not_an_object(tmp_path):
    with pytest.raises(StorageError, match="is a folder"):
        Storage().read_bytes(str(tmp_path))
    assert not Storage().exists(str(tmp_path))


def test_local_write_leaves_no_temp_files_and_keeps_old_content_on_failure(tmp_path, monkeypatch):
    storage, target = Storage(), tmp_path / "out" / "photo.png"
    storage.write_bytes(str(target), b"old")
    storage.write_bytes(str(target), b"new")
    assert os.listdir(target.parent) == ["photo.png"]
    (tmp_path / "plain.png").write_bytes(b"")
    assert target.stat().st_mode == (tmp_path / "plain.png").stat().st_mode  # permissions as open() gives

    def crash(fd):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk on fire"):
        storage.write_bytes(str(target), b"half-written")
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["photo.png"]


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_write_file_streams_a_local_file(kind, tmp_path, s3_server):
    storage = s3_server.storage()
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(300_000))
    root = str(tmp_path / "dst") if kind == "local" else f"s3://{s3_server.create_bucket()}"
    uri = storage.join(root, "copy.bin")
    storage.write_file(uri, source)
    assert storage.read_bytes(uri) == source.read_bytes()


def test_large_s3_objects_go_up_as_one_completed_multipart_upload(s3_server, bucket, monkeypatch):
    monkeypatch.setattr(storage_module, "MULTIPART_THRESHOLD", 5 * 1024 * 1024)
    storage, data = s3_server.storage(), os.urandom(6 * 1024 * 1024)
    storage.write_bytes(f"s3://{bucket}/big.bin", data)
    assert storage.read_bytes(f"s3://{bucket}/big.bin") == data
    assert storage.info(f"s3://{bucket}/big.bin").etag.endswith("-1")  # multipart ETags end in -<parts>
    assert not s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads")


# -- listing ---------------------------------------------------------------------------------------------


def test_list_recurses_sorted_filters_extensions_and_respects_folder_boundaries(place):
    storage, root = place
    names = ["b.JPG", "a.png", "notes.txt", "sub/c.tif", "sub/deeper/d.jpeg", "z.Tiff"]
    for name in names:
        storage.write_bytes(storage.join(root, name), b"x" * 3)
    storage.write_bytes(storage.join(root + "-old", "old.png"), b"x")  # sibling prefix: must not appear

    everything = list(storage.list(root))
    assert all(isinstance(o, ObjectInfo) and o.size == 3 for o in everything)
    assert len(everything) == len(names)
    images = [o.uri for o in storage.list(root, extensions=(".jpg", "png", ".TIF", ".tiff", ".jpeg"))]
    expected = ["a.png", "b.JPG", "sub/c.tif", "sub/deeper/d.jpeg", "z.Tiff"]
    assert images == [storage.join(root, n) for n in expected]  # key order, local folders included
    for uri in images:
        assert storage.read_bytes(uri) == b"xxx"  # listed URIs read back as they are


def test_list_of_a_missing_prefix_is_empty(place):
    storage, root = place
    assert list(storage.list(storage.join(root, "nothing-here"))) == []


def test_list_of_a_local_file_is_refused(tmp_path):
    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(StorageError, match="is a file, not a folder"):
        list(Storage().list(str(tmp_path / "x.png")))


def test_list_skips_s3_folder_markers(s3_server, bucket):
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="scans/", Body=b"")
    client.put_object(Bucket=bucket, Key="scans/a.png", Body=b"x")
    assert [o.uri for o in s3_server.storage().list(f"s3://{bucket}/scans/")] == [
        f"s3://{bucket}/scans/a.png"
    ]


def test_list_follows_s3_pagination_past_1000_keys(s3_server, bucket):
    count = 2_345  # three pages of at most 1,000 keys
    keys = [f"scans/{i:05d}.{'tif' if i % 2 else 'txt'}" for i in range(count)]
    s3_server.put_many(bucket, keys)
    listed = list(s3_server.storage().list(f"s3://{bucket}/scans"))
    assert [o.uri for o in listed] == [f"s3://{bucket}/{k}" for k in keys]
    tifs = list(s3_server.storage().list(f"s3://{bucket}/scans", extensions=(".TIF",)))
    assert len(tifs) == count // 2
