"""One way to read, write and list objects whether they live in S3 (or MinIO / Ceph) or on a local disk.

A URI is ``s3://bucket/key``, a plain local path or a ``file://`` URI. Credentials come only from the
standard AWS chain (environment, ~/.aws, instance or pod role); nothing here accepts or logs keys.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import random
import re
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote, unquote, urlsplit

from model.files import is_temp_name, write_atomically

# Objects below this size go up in one put_object (atomic in S3); larger ones as a multipart upload that S3
# only assembles when it is completed and that boto3 aborts on error, so readers never see a partial object.
MULTIPART_THRESHOLD = 64 * 1024 * 1024
OUTAGE_BACKOFF_CAP_S = 30.0  # longest single wait between tries while an outage lasts

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_T = TypeVar("_T")


class StorageError(Exception):
    """A problem a user can fix (wrong URI, missing object, no access) or an outage that outlived retries
    (``transient``: trying again later may succeed). The message is one line naming the URI and what to do."""

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(redact(message))
        self.transient = transient


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with the user:password part of every URL in it replaced (http://***@host): a message, a
    result row or a log line must never carry a credential someone put in a URL."""
    return _USERINFO.sub(r"\1***@", text)


def check_endpoint(url: str | None) -> None:
    """Refuse, before any work, an --endpoint-url botocore would reject deep inside a Ray task (with the
    URL, credentials and all, in a traceback and in Ray's session logs), or one carrying credentials."""
    if url is None:
        return
    from urllib.parse import urlsplit

    from botocore.utils import is_valid_endpoint_url

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        parts = None
    if parts is not None and "@" in parts.netloc:
        raise ValueError(
            f"endpoint {redact(url)} carries credentials; give the endpoint alone and the keys in "
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or an AWS profile)"
        )
    if parts is None or parts.scheme not in ("http", "https") or not is_valid_endpoint_url(url):
        raise ValueError(
            f"invalid endpoint {redact(url)}: expected http(s)://host[:port] with a valid host name "
            "(letters, digits, '-' and '.'; no '_')"
        )


@dataclass(frozen=True)
class ParsedUri:
    """``scheme`` is 's3' or 'file'. For s3, ``key`` is the object key ('' for a bare bucket); for file,
    ``bucket`` is None and ``key`` is the local path (as given, percent-decoded for file:// URIs)."""

    scheme: str
    bucket: str | None
    key: str


@dataclass(frozen=True)
class ObjectInfo:
    """``size`` in bytes; ``etag`` is S3's ETag without quotes (None for local files); ``mtime`` is POSIX
    seconds (S3 LastModified or the file's modification time)."""

    uri: str
    size: int
    etag: str | None
    mtime: float


@dataclass(frozen=True)
class StorageOptions:
    """``endpoint_url`` points at MinIO, Ceph RGW or another S3-compatible service (None: AWS).
    ``max_attempts`` counts the first try of each request: botocore retries transient errors with
    exponential backoff. ``outage_patience_s``: how long an outage that outlasts those retries is waited
    out (capped exponential backoff, full jitter) before the request fails; a short outage then pauses the
    run rather than failing every row in flight."""

    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 8
    outage_patience_s: float = 300.0

    def __post_init__(self) -> None:
        check_endpoint(self.endpoint_url)
        if not (0 <= self.outage_patience_s < float("inf")):  # NaN fails this too
            raise ValueError(f"outage patience must be 0 or more seconds, got {self.outage_patience_s}")


def parse_uri(uri: str) -> ParsedUri:
    """Split a URI; raises StorageError for other schemes (http://, gs://) and s3:// without a bucket."""
    match = _SCHEME.match(uri) if isinstance(uri, str) else None
    if match is None:
        if not isinstance(uri, str) or not uri.strip():
            raise StorageError(f"invalid URI {uri!r}: expected s3://bucket/key, a local path or file:///path")
        return ParsedUri("file", None, uri)
    scheme = match.group(1).lower()
    if scheme == "s3":
        bucket, _, key = uri[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket):
            raise StorageError(f"invalid URI {uri!r}: expected s3://bucket/key with a valid bucket name")
        return ParsedUri("s3", bucket, key)
    if scheme == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise StorageError(f"invalid URI {uri!r}: a file URI looks like file:///absolute/path")
        return ParsedUri("file", None, unquote(parts.path))
    raise StorageError(
        f"invalid URI {uri!r}: scheme {scheme}:// is not supported; use s3://, file:// or a path"
    )


def is_same_or_inside(child_uri: str, parent_uri: str) -> bool:
    """True when ``child_uri`` names the same place as ``parent_uri`` or lies under it. Local paths are
    resolved (symlinks, '..'); S3 keys compare on '/' boundaries, so s3://b/scans-old is not inside s3://b/scans."""
    child, parent = parse_uri(child_uri), parse_uri(parent_uri)
    if child.scheme != parent.scheme:
        return False
    if child.scheme == "s3":
        if child.bucket != parent.bucket:
            return False
        parent_key, child_key = parent.key.strip("/"), child.key.strip("/")
        return not parent_key or child_key == parent_key or child_key.startswith(parent_key + "/")
    child_path, parent_path = Path(os.path.realpath(child.key)), Path(os.path.realpath(parent.key))
    return child_path == parent_path or parent_path in child_path.parents


class Storage:
    """Reads and writes S3 objects and local files behind one set of methods. Picklable: Ray ships it to
    workers, and each process builds its own boto3 client on first S3 use."""

    def __init__(self, options: StorageOptions | None = None) -> None:
        self.options = options or StorageOptions()
        self._client: Any = None
        self._client_pid: int | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}  # a boto3 client neither pickles nor survives a fork

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["options"])

    def __repr__(self) -> str:
        return f"Storage({self.options!r})"

    # -- reading -------------------------------------------------------------------------------------

    def read_bytes(self, uri: str, max_bytes: int | None = None) -> bytes:
        """The object's bytes. A local path must be a regular file: a FIFO would block the reader forever
        and a device (/dev/zero) never ends. With ``max_bytes``, a larger object is refused before it is
        read (S3: by its Content-Length)."""
        target = self._object(uri)
        if target.scheme == "file":
            with _local_errors(uri):
                return _read_regular_file(uri, target.key, max_bytes)

        def get() -> bytes:
            response = self._s3().get_object(Bucket=target.bucket, Key=target.key)
            size = int(response.get("ContentLength", 0))
            if max_bytes is not None and size > max_bytes:
                response["Body"].close()
                raise StorageError(_too_large(uri, size, max_bytes))
            return response["Body"].read()

        return self._s3_call(uri, get)

    def exists(self, uri: str) -> bool:
        """True for an existing object or regular file (a local folder is not an object)."""
        target = self._object(uri)
        if target.scheme == "file":
            return os.path.isfile(target.key)
        from botocore.exceptions import ClientError

        from pipeline import s3

        def head() -> bool:
            try:
                self._s3().head_object(Bucket=target.bucket, Key=target.key)
            except ClientError as exc:
                if s3.is_not_found(exc):
                    return False
                raise
            return True

        return self._s3_call(uri, head)

    def info(self, uri: str) -> ObjectInfo:
        target = self._object(uri)
        if target.scheme == "file":
            with _local_errors(uri):
                st = os.stat(target.key)
            if not os.path.isfile(target.key):
                raise StorageError(f"{uri}: is a folder, not a file")
            return ObjectInfo(uri, st.st_size, None, st.st_mtime)
        head = self._s3_call(uri, lambda: self._s3().head_object(Bucket=target.bucket, Key=target.key))
        return ObjectInfo(
            uri, head["ContentLength"], head["ETag"].strip('"'), head["LastModified"].timestamp()
        )

    def list(self, prefix_uri: str, extensions: tuple[str, ...] | None = None) -> Iterator[ObjectInfo]:
        """Yield every object under a folder-like prefix, lazily (bounded memory for millions of keys).

        The prefix is a folder: s3://b/scans lists s3://b/scans/... but not s3://b/scans-old/. A missing
        prefix or local folder yields nothing, as S3 does. Both yield in key order (a local file's key is its
        path below the folder). ``extensions`` ('.jpg' or 'jpg') filter case-insensitively. Yielded URIs
        keep the prefix's form: s3://, file:// or an absolute local path."""
        wanted = tuple("." + e.lower().lstrip(".") for e in extensions) if extensions is not None else None
        target = parse_uri(prefix_uri)
        items = (
            self._list_local(prefix_uri, target)
            if target.scheme == "file"
            else self._list_s3(prefix_uri, target)
        )
        for item in items:
            if wanted is None or item.uri.lower().endswith(wanted):
                yield item

    # -- writing -------------------------------------------------------------------------------------

    def download_folder(self, prefix_uri: str, folder: str, extensions: tuple[str, ...] | None = None) -> int:
        """Copy the objects directly under ``prefix_uri`` (S3 or local) into ``folder``; returns how many."""
        count = 0
        for obj in self.list(prefix_uri, extensions):
            source = parse_uri(obj.uri)
            if source.scheme == "file" and not os.path.exists(source.key):
                continue  # a link to a file that is gone: listed for manifests, nothing to copy here
            name = obj.uri.rstrip("/").rsplit("/", 1)[-1]
            with open(os.path.join(folder, name), "wb") as out:
                out.write(self.read_bytes(obj.uri))
            count += 1
        return count

    def write_bytes(self, uri: str, data: bytes, content_type: str | None = None) -> None:
        """Write the whole object or nothing: readers see the old object, no object, or the new one."""
        target = self._object(uri)
        if target.scheme == "file":
            self._replace_local(uri, target.key, lambda out: out.write(data))
            return
        extra = {"ContentType": content_type} if content_type else {}

        def put() -> None:  # a fresh stream per try: a failed try leaves the last one part-read
            if len(data) < MULTIPART_THRESHOLD:
                self._s3().put_object(Bucket=target.bucket, Key=target.key, Body=data, **extra)
            else:
                self._s3().upload_fileobj(
                    io.BytesIO(data), target.bucket, target.key, ExtraArgs=extra, Config=self._transfer()
                )

        self._s3_call(uri, put)

    def write_file(
        self, uri: str, local_path: str | os.PathLike[str], content_type: str | None = None
    ) -> None:
        """Copy a local file to ``uri`` as atomically as write_bytes, streaming it (never whole in memory)."""
        target = self._object(uri)
        if target.scheme == "file":
            with _local_errors(str(local_path)), open(local_path, "rb") as src:
                self._replace_local(uri, target.key, lambda out: shutil.copyfileobj(src, out, 1024 * 1024))
            return
        extra = {"ContentType": content_type} if content_type else {}
        self._s3_call(
            uri,
            lambda: self._s3().upload_file(
                os.fspath(local_path), target.bucket, target.key, ExtraArgs=extra, Config=self._transfer()
            ),
        )

    def delete(self, uri: str) -> None:
        """Remove an object or file; deleting something already gone is not an error."""
        target = self._object(uri)
        if target.scheme == "file":
            with _local_errors(uri), contextlib.suppress(FileNotFoundError):
                os.remove(target.key)
            return
        self._s3_call(uri, lambda: self._s3().delete_object(Bucket=target.bucket, Key=target.key))

    def remove_stale_temp_files(self, prefix_uri: str) -> int:
        """Delete the hidden temp files (``.name.<32 hex>.tmp``) that local writes leave behind when a run is
        killed mid-write, anywhere under a local prefix; returns how many. Call it before a run starts: a
        temp file of a write in progress would be taken too (one run per output prefix). S3 writes leave no
        temp objects (an unfinished multipart upload is invisible and expires by bucket policy)."""
        target = parse_uri(prefix_uri)
        if target.scheme != "file":
            return 0
        removed = 0
        for entry in _walk_files(os.path.abspath(target.key)):
            if is_temp_name(entry.name):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(entry.path)
                    removed += 1
        return removed

    @staticmethod
    def join(prefix_uri: str, *parts: str) -> str:
        """Append path segments: join('s3://b/out/', '_results', 'x.parquet') == 's3://b/out/_results/x.parquet'."""
        target = parse_uri(prefix_uri)
        segments = [p.strip("/") for p in parts if p.strip("/")]
        if target.scheme == "file" and not _SCHEME.match(prefix_uri):
            return os.path.join(prefix_uri, *segments)
        if target.scheme == "file":
            segments = [quote(s) for s in segments]  # parse_uri percent-decodes file:// URIs
        return "/".join([prefix_uri.rstrip("/"), *segments])

    # -- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _object(uri: str) -> ParsedUri:
        target = parse_uri(uri)
        if target.scheme == "s3" and not target.key.strip("/"):
            raise StorageError(
                f"{uri}: names a bucket, not an object; add a key such as s3://bucket/path/file"
            )
        return target

    def _list_local(self, prefix_uri: str, target: ParsedUri) -> Iterator[ObjectInfo]:
        root = os.path.abspath(target.key)
        if os.path.isfile(root):
            raise StorageError(f"{prefix_uri}: is a file, not a folder; give the folder that holds it")
        as_uri = bool(_SCHEME.match(prefix_uri))
        for entry in _walk_files(root):
            try:
                st = entry.stat() if entry.is_file() else entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted while listing
            uri = Path(entry.path).as_uri() if as_uri else entry.path
            yield ObjectInfo(uri, st.st_size, None, st.st_mtime)

    def _list_s3(self, prefix_uri: str, target: ParsedUri) -> Iterator[ObjectInfo]:
        prefix = target.key.lstrip("/")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        with self._s3_errors(prefix_uri):
            pages = self._s3().get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue  # a zero-byte "folder" marker some tools create
                    uri = f"s3://{target.bucket}/{obj['Key']}"
                    yield ObjectInfo(
                        uri, obj["Size"], obj["ETag"].strip('"'), obj["LastModified"].timestamp()
                    )

    def _replace_local(self, uri: str, path: str, write: Callable[[BinaryIO], object]) -> None:
        with _local_errors(uri):
            write_atomically(path, write)

    def _s3(self) -> Any:
        from pipeline import s3

        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = s3.make_client(self.options)
                self._client_pid = os.getpid()
            return self._client

    def _s3_call(self, uri: str, request: Callable[[], _T]) -> _T:
        """Run one idempotent S3 request. An outage that outlasts botocore's retries is waited out for up
        to ``outage_patience_s``: every row in flight waits with it instead of failing, so a short outage
        pauses the run. Past the patience the transient StorageError is raised and the row fails; a re-run
        finishes it."""
        deadline: float | None = None
        backoff = 1.0
        while True:
            try:
                with self._s3_errors(uri):
                    return request()
            except StorageError as exc:
                now = time.monotonic()
                deadline = now + self.options.outage_patience_s if deadline is None else deadline
                if not exc.transient or now >= deadline:
                    if exc.transient and self.options.outage_patience_s > 0:
                        raise StorageError(
                            f"{exc} (waited {self.options.outage_patience_s:.0f} s for the outage to pass)",
                            transient=True,
                        ) from exc
                    raise
                time.sleep(min(random.uniform(0, backoff), deadline - now))  # full jitter: tries spread
                backoff = min(backoff * 2, OUTAGE_BACKOFF_CAP_S)

    def _s3_errors(self, uri: str) -> contextlib.AbstractContextManager[None]:
        from pipeline import s3

        return s3.errors(uri, self.options.max_attempts)

    def _transfer(self) -> Any:
        from pipeline import s3

        return s3.transfer_config(MULTIPART_THRESHOLD)


def _walk_files(folder: str) -> Iterator[os.DirEntry[str]]:
    """Files under ``folder`` in the order S3 lists keys: sorted by path, a subfolder 'x' sorting as 'x/'."""
    try:
        with os.scandir(folder) as scan:
            entries = sorted(scan, key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name)
    except FileNotFoundError:
        return
    except PermissionError:
        raise StorageError(f"{folder}: permission denied; check the folder's permissions") from None
    for entry in entries:
        # Symlinked folders are not followed: a link back up the tree would loop forever.
        if entry.is_dir(follow_symlinks=False):
            yield from _walk_files(entry.path)
        elif entry.is_file() or (entry.is_symlink() and not os.path.exists(entry.path)):
            # A link to a file that is gone is listed too: its row then fails as "not found", where
            # leaving it out would make it vanish from the archive without a word.
            yield entry


def _read_regular_file(uri: str, path: str, max_bytes: int | None) -> bytes:
    # O_NONBLOCK: opening a FIFO with no writer returns at once (then refused) instead of waiting forever;
    # it changes nothing for a regular file.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "folder" if stat.S_ISDIR(info.st_mode) else "FIFO, device or socket"
            raise StorageError(f"{uri}: is a {kind}, not a regular file; nothing read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise StorageError(_too_large(uri, info.st_size, max_bytes))
        data = file.read() if max_bytes is None else file.read(max_bytes + 1)
        if max_bytes is not None and len(data) > max_bytes:  # grew while read
            raise StorageError(_too_large(uri, len(data), max_bytes))
        return data


def _too_large(uri: str, size: int, max_bytes: int) -> str:
    return (
        f"{uri}: {size:,} bytes, more than any image within the pixel limit needs ({max_bytes:,}); "
        "raise --max-pixels if it is one"
    )


@contextlib.contextmanager
def _local_errors(uri: str) -> Iterator[None]:
    try:
        yield
    except FileNotFoundError:
        raise StorageError(f"{uri}: not found; check the path") from None
    except IsADirectoryError:
        raise StorageError(f"{uri}: is a folder, not a file") from None
    except NotADirectoryError:
        raise StorageError(f"{uri}: a part of the path is a file, not a folder") from None
    except PermissionError:
        raise StorageError(f"{uri}: permission denied; check the file's permissions") from None
    except OSError as exc:
        if exc.errno not in _FULL_OR_READ_ONLY:
            raise
        # Everything recorded so far is safe (writes are atomic, results go in parts): say so, in one line.
        raise StorageError(f"{uri}: {_FULL_OR_READ_ONLY[exc.errno]}; fix that and re-run to resume") from None


_FULL_OR_READ_ONLY = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
}
