"""Shared fixtures: a real photo, a real S3 endpoint (moto's HTTP server on 127.0.0.1, reached through boto3
like AWS) and a tiny generator checkpoint."""

from __future__ import annotations

import contextlib
import io
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import boto3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import skimage.data
import torch
from moto.server import ThreadedMotoServer
from PIL import Image

from model.checkpoints import save_generator
from model.restoration.config import tiny
from model.restoration.generator import Generator
from pipeline.storage import Storage, StorageOptions


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A real photo (scikit-image's public-domain astronaut), 128x128 RGB."""
    return Image.fromarray(skimage.data.astronaut()).resize((128, 128), Image.Resampling.LANCZOS)


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    np.random.seed(0)  # only third-party code could depend on it; patina passes generators explicitly


# Fake credentials so boto3 never looks for real ones (and never finds a developer's own).
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@dataclass(frozen=True)
class S3Archive:
    bucket: str
    manifest: str  # s3:// URI of a manifest of ``uris``
    model: str  # s3:// URI of the model
    uris: list[str]


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    @cached_property
    def _client(self):
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")

    def client(self):
        """A plain boto3 client for setting up and inspecting buckets behind Storage's back."""
        return self._client

    def storage(self, max_attempts: int = 3) -> Storage:
        return Storage(StorageOptions(endpoint_url=self.endpoint_url, max_attempts=max_attempts))

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a unique 'test-...' name unless given; S3 wants 3-63 chars); return its name."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def scan_archive(
        self,
        photo: Image.Image,
        count: int,
        model: Path,
        size: tuple[int, int] = (40, 32),
        missing: bool = False,
    ) -> S3Archive:
        """A new bucket with what a run on S3 reads: ``count`` small PNG scans under scans/, the model under
        models/ and a manifest of the scans (plus a key that does not exist, if ``missing``). Written with a
        plain client, straight to the server."""
        bucket = self.create_bucket()
        uris = []
        for i in range(count):
            buffer = io.BytesIO()
            photo.resize(size).rotate(i * 20).save(buffer, "PNG")
            self.client().put_object(Bucket=bucket, Key=f"scans/{i:02d}.png", Body=buffer.getvalue())
            uris.append(f"s3://{bucket}/scans/{i:02d}.png")
        if missing:
            uris.append(f"s3://{bucket}/scans/missing.png")
        self.client().put_object(Bucket=bucket, Key="models/tiny.safetensors", Body=model.read_bytes())
        sink = pa.BufferOutputStream()
        pq.write_table(pa.table({"uri": uris}), sink)
        self.client().put_object(Bucket=bucket, Key="manifest.parquet", Body=sink.getvalue().to_pybytes())
        return S3Archive(
            bucket, f"s3://{bucket}/manifest.parquet", f"s3://{bucket}/models/tiny.safetensors", uris
        )

    def put_many(self, bucket: str, keys: list[str], body: bytes = b"x") -> None:
        """Create many objects straight in moto's in-process backend: an HTTP PUT to moto costs ~10 ms, and
        tests of listing only need the objects to exist (they still list them over HTTP)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(bucket, key, body)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_AWS_ENV.items():
            env.setenv(name, value)
        env.delenv("AWS_PROFILE", raising=False)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield S3Server(endpoint_url=f"http://127.0.0.1:{port}")
        finally:
            server.stop()


class OutageProxy:
    """A TCP proxy in front of the S3 server that a test can take down and bring back: while down it cuts
    every open connection and accepts new ones only to close them at once, as a dead load balancer does."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.down = False
        self.refuse_next = 0  # close this many new connections at once, then serve again
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def outage(self, down: bool = True) -> None:
        with self._lock:
            self.down = down
            if down:
                for sock in self._open:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                self._open.clear()

    def close(self) -> None:
        self.outage(True)
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self.down or self.refuse_next > 0:
                    self.refuse_next = max(0, self.refuse_next - 1)
                    client.close()
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            self._open -= {src, dst}


@pytest.fixture
def tcp_proxy() -> Iterator[Callable[[int], OutageProxy]]:
    """``tcp_proxy(port)``: an OutageProxy in front of 127.0.0.1:port, closed after the test."""
    proxies: list[OutageProxy] = []

    def start(port: int) -> OutageProxy:
        proxies.append(OutageProxy(port))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()


@pytest.fixture
def outage_proxy(s3_server: S3Server, tcp_proxy) -> OutageProxy:
    """The session's S3 server behind a proxy the test can take down (outage(True)) and bring back."""
    return tcp_proxy(int(s3_server.endpoint_url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def ray_local(s3_server):
    """A local Ray (2 CPUs), never a cluster running on this machine. One is shared by every module that asks
    for it (starting one costs ~8 s on the 2-core box) until a module that needs none, or its own, asks for
    ``no_ray``. After s3_server: Ray's workers inherit the fake AWS credentials from this process's
    environment."""
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield


@pytest.fixture(scope="module")
def no_ray():
    """No Ray in this process for the module: the shared local one (``ray_local``) is stopped first."""
    if ray.is_initialized():
        ray.shutdown()
    yield


@pytest.fixture(scope="session", autouse=True)
def _ray_stopped_at_the_end():
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def bucket(s3_server: S3Server) -> str:
    """A fresh, empty bucket for one test."""
    return s3_server.create_bucket()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A `tiny` generator checkpoint whose output visibly differs from its input (an untrained generator is
    the identity), so tests can tell that the model really ran."""
    generator = Generator(tiny().generator)
    torch.manual_seed(0)
    generator.to_residual.reset_parameters()
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_generator(path, generator, tiny(), step=7, data="test weights")
    return path


@pytest.fixture(scope="session")
def tiny_retro_checkpoint(tmp_path_factory) -> Path:
    """A `tiny` retro model (style encoder + generator) whose output differs from its input: its zero-started
    last layers are re-drawn (untrained, it would return the photo unchanged)."""
    from model.retro.config import tiny as retro_tiny
    from model.retro.generator import RetroModel

    torch.manual_seed(0)
    model = RetroModel(retro_tiny())
    for layer in (model.generator.point_out, model.generator.local_out):
        layer.reset_parameters()
    path = tmp_path_factory.mktemp("models") / "retro-tiny.safetensors"
    save_generator(path, model, retro_tiny(), step=3, data="test weights", family_name="retro")
    return path


@pytest.fixture(scope="session")
def conditioned_retro_checkpoint(tmp_path_factory) -> Path:
    """``tiny_retro_checkpoint`` with its style-conditioning (FiLM) layers drawn too: zero-started, the
    reference would have no effect on the output, and a job that ignored its reference would pass."""
    from model.retro.config import tiny as retro_tiny
    from model.retro.generator import FiLM, RetroModel

    torch.manual_seed(1)
    model = RetroModel(retro_tiny())
    for layer in (model.generator.point_out, model.generator.local_out):
        layer.reset_parameters()
    with torch.no_grad():
        for film in (m for m in model.modules() if isinstance(m, FiLM)):
            film.proj.weight.normal_(std=0.5)
            film.proj.bias.normal_(std=0.2)
    path = tmp_path_factory.mktemp("models") / "retro-conditioned.safetensors"
    save_generator(path, model, retro_tiny(), step=3, data="test weights", family_name="retro")
    return path


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run where CUDA is, and are reported as skipped (with the reason) elsewhere."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
