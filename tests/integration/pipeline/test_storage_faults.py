"""Storage when things go wrong, against moto's real S3 HTTP server, a real failing HTTP endpoint and real
local folders: retries, outages, refusals, permissions, processes (test_storage.py has the normal paths)."""

from __future__ import annotations

import os
import pickle
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.storage import Storage, StorageError, StorageOptions

# -- processes, retries and refusals ----------------------------------------------------------------------


def test_storage_pickles_without_its_client(s3_server, bucket):
    storage = s3_server.storage()
    storage.write_bytes(f"s3://{bucket}/a.png", b"png")  # builds the client
    clone = pickle.loads(pickle.dumps(storage))
    assert clone.options == storage.options
    assert clone._client is None
    assert clone.read_bytes(f"s3://{bucket}/a.png") == b"png"


class FailingS3:
    """A local HTTP endpoint answering every request with one S3 error, counting requests."""

    def __init__(self, status: int, code: str) -> None:
        self.requests = 0
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>no</Message></Error>"
        )
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _fail(self) -> None:
                outer.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body.encode())

            do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _fail

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint_url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def failing_s3(s3_server):  # s3_server: for its fake credentials
    servers = []

    def start(status: int, code: str) -> FailingS3:
        servers.append(FailingS3(status, code))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_transient_errors_are_retried_then_reported(failing_s3):
    server = failing_s3(503, "SlowDown")
    storage = Storage(StorageOptions(endpoint_url=server.endpoint_url, max_attempts=3, outage_patience_s=0))
    with pytest.raises(
        StorageError, match=r"s3://slow-bucket/x.png: transient S3 error SlowDown .* 3 attempts"
    ):
        storage.read_bytes("s3://slow-bucket/x.png")
    assert server.requests == 3


def test_an_outage_is_waited_out_for_the_patience_then_reported(failing_s3):
    server = failing_s3(503, "SlowDown")
    storage = Storage(StorageOptions(endpoint_url=server.endpoint_url, max_attempts=2, outage_patience_s=2))
    started = time.monotonic()
    with pytest.raises(
        StorageError, match=r"transient S3 error SlowDown .*\(waited 2 s for the outage to pass\)"
    ):
        storage.read_bytes("s3://slow-bucket/x.png")
    assert 2 <= time.monotonic() - started < 5
    assert server.requests > 2  # tried again while waiting, not once per botocore budget


def test_a_short_outage_pauses_a_request_instead_of_failing_it(s3_server, outage_proxy):
    bucket = s3_server.create_bucket()
    s3_server.client().put_object(Bucket=bucket, Key="a.png", Body=b"scan")
    storage = Storage(
        StorageOptions(endpoint_url=outage_proxy.endpoint_url, max_attempts=2, outage_patience_s=30)
    )
    assert storage.read_bytes(f"s3://{bucket}/a.png") == b"scan"  # a kept-alive connection, then cut
    outage_proxy.outage()
    threading.Timer(3, outage_proxy.outage, args=(False,)).start()
    started = time.monotonic()
    assert storage.read_bytes(f"s3://{bucket}/a.png") == b"scan"
    storage.write_bytes(f"s3://{bucket}/b.png", b"restored")
    assert time.monotonic() - started >= 2.5
    assert s3_server.client().get_object(Bucket=bucket, Key="b.png")["Body"].read() == b"restored"


def test_access_denied_is_not_retried_and_says_what_to_check(failing_s3):
    server = failing_s3(403, "AccessDenied")
    storage = Storage(StorageOptions(endpoint_url=server.endpoint_url, max_attempts=5))
    with pytest.raises(
        StorageError, match=r"s3://locked/x.png: access denied \(AccessDenied\); check the cred"
    ):
        storage.write_bytes("s3://locked/x.png", b"x")
    assert server.requests == 1


def test_unreachable_endpoint_is_a_transient_error(s3_server):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    storage = Storage(
        StorageOptions(endpoint_url=f"http://127.0.0.1:{closed_port}", max_attempts=2, outage_patience_s=0)
    )
    with pytest.raises(StorageError, match=r"transient connection error .* 2 attempts"):
        storage.read_bytes("s3://some-bucket/x.png")


def test_local_permission_denied():
    # Root reads any file, and CI runs as root: the reads then run in a forked child that became the user
    # nobody, so the test runs everywhere instead of skipping where it matters.
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="patina-permissions-"))  # not under pytest's 0700 tmp folder
    try:
        folder.chmod(0o755)
        secret, shared = folder / "secret.png", folder / "shared.png"
        for path, mode in ((secret, 0), (shared, 0o644)):
            path.write_bytes(b"x")
            path.chmod(mode)
        assert _read_as_another_user([secret, shared]) == [
            f"{secret}: permission denied; check the file's permissions",
            "read 1 byte",
        ]
    finally:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


def _read_as_another_user(paths: list[Path]) -> list[str]:
    """Storage().read_bytes of each path in a forked child (as nobody when we are root): what each gave."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            lines = []
            for path in paths:
                try:
                    lines.append(f"read {len(Storage().read_bytes(str(path)))} byte")
                except StorageError as exc:
                    lines.append(str(exc))
            os.write(write_end, "\n".join(lines).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as out:
        text = out.read()
    os.waitpid(pid, 0)
    return text.splitlines()


def test_stale_temp_files_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    out = tmp_path / "out" / "box"
    out.mkdir(parents=True)
    stale = out / f".a.png.{'0' * 31}f.tmp"
    keep = [out / ".hidden", out / ".notes.tmp", out / "a.png", out / f"b.{'0' * 32}.tmp"]
    for path in [stale, *keep]:
        path.write_bytes(b"x")
    assert Storage().remove_stale_temp_files(str(tmp_path / "out")) == 1
    assert not stale.exists() and all(path.exists() for path in keep)
    assert Storage().remove_stale_temp_files("s3://bucket/out") == 0


def test_download_folder_skips_links_to_missing_files(tmp_path):
    source, target = tmp_path / "val", tmp_path / "copy"
    source.mkdir()
    target.mkdir()
    (source / "a.png").write_bytes(b"x")
    (source / "gone.png").symlink_to(source / "deleted.png")
    assert Storage().download_folder(str(source), str(target)) == 1
    assert sorted(p.name for p in target.iterdir()) == ["a.png"]


@pytest.mark.parametrize("patience", [float("nan"), -1.0, float("inf")])
def test_outage_patience_must_be_a_finite_number_of_seconds(patience):
    with pytest.raises(ValueError, match="outage patience"):
        StorageOptions(outage_patience_s=patience)
