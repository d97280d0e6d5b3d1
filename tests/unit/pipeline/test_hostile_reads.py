"""Fetch reads only regular files, and never more bytes than an image within the pixel limit can hold: a
FIFO in a manifest once hung the job forever and /dev/zero was read until memory ran out."""

import os
import threading

from stage_batches import manifest

from pipeline.batch.stages import byte_cap, fetch
from pipeline.storage import Storage


def test_a_fifo_a_device_and_an_oversized_file_fail_their_rows_at_once(tmp_path):
    fifo = tmp_path / "scan.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.png"
    zero.symlink_to("/dev/zero")
    big = tmp_path / "big.tif"
    with open(big, "wb") as f:
        f.truncate(byte_cap(1000) + 1)  # sparse: no disk used
    fine = tmp_path / "fine.png"
    fine.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    done = {}
    reader = threading.Thread(
        target=lambda: done.update(
            fetch(manifest([str(p) for p in (fifo, zero, big, fine)]), Storage(), 1000)
        )
    )
    reader.start()
    reader.join(timeout=15)
    assert not reader.is_alive(), "fetch blocked on a FIFO"
    errors = list(done["error"])
    assert "not a regular file" in errors[0] and "FIFO" in errors[0]
    assert "not a regular file" in errors[1]
    assert "more than any image within the pixel limit needs" in errors[2] and "--max-pixels" in errors[2]
    assert errors[3] == "" and len(done["data"][3]) == 108
    assert all(len(done["data"][i]) == 0 for i in range(3))


def test_an_oversized_s3_object_is_refused_by_its_length(s3_server):
    storage = s3_server.storage()
    bucket = s3_server.create_bucket()
    storage.write_bytes(f"s3://{bucket}/big.jpg", bytes(byte_cap(10) + 1))
    storage.write_bytes(f"s3://{bucket}/ok.jpg", b"\xff\xd8" + bytes(10))
    out = fetch(manifest([f"s3://{bucket}/big.jpg", f"s3://{bucket}/ok.jpg"]), storage, 10)
    assert "more than any image within the pixel limit needs" in out["error"][0]
    assert out["error"][1] == "" and len(out["data"][1]) == 12


def test_a_full_or_read_only_disk_is_one_line_that_says_how_to_go_on():
    import errno

    import pytest

    from pipeline.storage import StorageError, _local_errors

    for code, reason in (
        (errno.ENOSPC, "no space left"),
        (errno.EROFS, "read-only"),
        (errno.EDQUOT, "quota"),
    ):
        where = "/archive/out/_results/part-1.parquet"
        with pytest.raises(StorageError, match=f"{reason}.*re-run to resume") as info, _local_errors(where):
            raise OSError(code, os.strerror(code))
        assert "\n" not in str(info.value)
    # /dev/full is a real device that answers every write with ENOSPC.
    with pytest.raises(OSError) as full, open("/dev/full", "wb") as f:
        f.write(b"x")
        f.flush()
    with pytest.raises(StorageError, match="no space left"), _local_errors("/dev/full"):
        raise full.value
