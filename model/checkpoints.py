"""Checkpoints: one safetensors file whose header carries JSON metadata (family, config, step, data,
metrics, package version). Loading rebuilds the model from that metadata through the family map
(model/families.py) and never unpickles anything. ``load_generator`` is the one way every caller loads a
model, from a local path or any storage that can ``read_bytes`` (s3:// through pipeline.storage).

A single self-describing file is easy to copy between disk, S3 and a model registry without a sidecar
going missing.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

from model.families import family
from model.files import DEFAULT_CHECKPOINT, DEFAULT_RETRO_CHECKPOINT, write_atomically

__all__ = ["DEFAULT_CHECKPOINT", "DEFAULT_RETRO_CHECKPOINT"]  # the shipped models, re-exported

FORMAT = "patina-checkpoint"
FORMAT_VERSION = 2  # 2: records the model family; version-1 files are all restoration checkpoints
_META_KEY = "patina"


class ByteReader(Protocol):
    """What the loader needs of a store (pipeline.storage.Storage is one); model/ imports nothing above it."""

    def read_bytes(self, uri: str) -> bytes: ...


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is one line naming the file and what to do."""


@dataclass(frozen=True)
class CheckpointMeta:
    config: Any  # the family's typed config: RestorationConfig, RetroConfig
    family: str = "restoration"
    kind: str = "generator"  # "generator" (inference) | "training" (G, D, EMA, optimizers)
    step: int = 0
    data: str = ""  # what it was trained on, in words
    metrics: dict[str, float] = field(default_factory=dict)
    version: str = ""  # patina package version that wrote it
    extra: dict[str, Any] = field(default_factory=dict)  # JSON-able training state (optimizer settings)

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "family": self.family,
                "kind": self.kind,
                "step": self.step,
                "data": self.data,
                "metrics": self.metrics,
                "version": self.version or package_version(),
                "config": self.config.to_dict(),
                "extra": self.extra,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, name: str) -> CheckpointMeta:
        try:
            raw = json.loads(text)
            if raw.get("format") != FORMAT:
                raise CheckpointError(f"{name}: not a patina checkpoint (format {raw.get('format')!r})")
            if raw.get("format_version", 0) > FORMAT_VERSION:
                raise CheckpointError(
                    f"{name}: written by a newer patina (format {raw['format_version']}); upgrade patina"
                )
            name_of_family = raw.get("family", "restoration")
            _refuse_retired(raw["config"], name)
            return cls(
                config=family(name_of_family).config_from_dict(raw["config"]),
                family=name_of_family,
                kind=raw["kind"],
                step=int(raw["step"]),
                data=raw.get("data", ""),
                metrics=dict(raw.get("metrics", {})),
                version=raw.get("version", ""),
                extra=dict(raw.get("extra", {})),
            )
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{name}: checkpoint metadata is invalid ({exc})") from None


def _refuse_retired(config: dict[str, Any], name: str) -> None:
    """Checkpoints of the first generator (FiLM U-Net at full resolution, preset ``base``) cannot be rebuilt
    by this patina: say what the file is instead of a confusing config error."""
    if "channel_mults" in config.get("generator", {}):
        raise CheckpointError(
            f"{name}: a checkpoint of the retired full-resolution FiLM U-Net (preset "
            f"{config.get('preset', '?')!r}, patina <= 0.1); this patina cannot load it: use the default "
            "model or retrain with `patina train`"
        )


def package_version() -> str:
    try:
        return importlib_metadata.version("patina")
    except importlib_metadata.PackageNotFoundError:
        return "0+unknown"


def encode_checkpoint(tensors: dict[str, torch.Tensor], meta: CheckpointMeta) -> bytes:
    """Serialise to safetensors bytes. Tensors are copied to contiguous CPU memory first."""
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return save_safetensors(cpu, metadata={_META_KEY: meta.to_json()})


def decode_checkpoint(data: bytes, name: str) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    """Parse safetensors bytes and their metadata; every failure is a one-line CheckpointError."""
    header = _read_header(data, name)
    meta_text = header.get("__metadata__", {}).get(_META_KEY)
    if meta_text is None:
        raise CheckpointError(f"{name}: safetensors file without patina metadata; export it with patina")
    meta = CheckpointMeta.from_json(meta_text, name)
    try:
        tensors = load_safetensors(data)
    except SafetensorError as exc:
        raise CheckpointError(f"{name}: checkpoint is corrupt or truncated ({exc}); re-export it") from None
    return tensors, meta


def checkpoint_id(data: bytes, meta: CheckpointMeta) -> str:
    """A short, stable model id for results rows: preset, step and a content hash of the file."""
    return f"{meta.config.preset}-step{meta.step}-{hashlib.sha256(data).hexdigest()[:12]}"


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], meta: CheckpointMeta) -> None:
    """Write atomically (temp file + rename): a crash never leaves a half-written checkpoint at ``path``."""
    payload = encode_checkpoint(tensors, meta)
    write_atomically(path, lambda out: out.write(payload))


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], CheckpointMeta]:
    return decode_checkpoint(_read_local(path), str(path))


def _read_local(path: str | Path) -> bytes:
    """A checkpoint file's bytes; a missing file or a folder is a one-line CheckpointError."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: checkpoint not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a directory, expected a .safetensors checkpoint file") from None


def save_generator(
    path: str | Path,
    generator: nn.Module,
    config: Any,
    *,
    step: int = 0,
    data: str = "",
    metrics: dict[str, float] | None = None,
    family_name: str = "restoration",
) -> None:
    """Save an inference checkpoint: generator weights plus the family and config that rebuild it."""
    meta = CheckpointMeta(
        config=config, family=family_name, kind="generator", step=step, data=data, metrics=dict(metrics or {})
    )
    save_checkpoint(path, generator.state_dict(), meta)


def generator_from_tensors(
    tensors: dict[str, torch.Tensor], meta: CheckpointMeta, name: str, device: str | torch.device = "cpu"
) -> nn.Module:
    """Rebuild the generator described by ``meta`` and load its weights (strict: every key must match).

    Checked before a byte is allocated: the network is first built on the meta device (no memory), so a
    config no network can have (negative or absurd widths) is one error, not a 36 TB allocation; its shapes
    must be the weights' shapes; and every weight must be finite: NaN or inf weights (a diverged run's
    export) would turn every photo black, and a black photo must never be recorded as a restoration."""
    build = family(meta.family).build_generator
    try:
        with torch.device("meta"):
            shapes = {key: tuple(t.shape) for key, t in build(meta.config).state_dict().items()}
    except Exception as exc:  # any failure to build means the stored config is not a network
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{name}: its config describes no valid network ({reason})") from None
    stored = {key: tuple(t.shape) for key, t in tensors.items()}
    if shapes != stored:
        differs = sorted(set(shapes) ^ set(stored)) or sorted(k for k in shapes if shapes[k] != stored[k])
        raise CheckpointError(
            f"{name}: weights do not match the config stored with them (first difference: {differs[0]})"
        )
    broken = [
        key for key, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if broken:
        raise CheckpointError(
            f"{name}: {len(broken)} weight tensor(s) hold NaN or inf (first: {broken[0]}); the run that made "
            "it diverged: export an earlier checkpoint"
        )
    generator = build(meta.config)
    generator.load_state_dict(tensors, strict=True)
    return generator.to(device).eval()


def load_generator(
    uri: str | Path, storage: ByteReader | None = None, device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointMeta, str]:
    """The one loader: an inference checkpoint from a local path, or from ``storage.read_bytes`` (s3:// and
    local through pipeline.storage.Storage). Returns (generator in eval mode, metadata, model id)."""
    name = str(uri)
    return decode_generator(
        storage.read_bytes(name) if storage is not None else _read_local(uri), name, device
    )


def decode_generator(
    data: bytes, name: str, device: str | torch.device = "cpu"
) -> tuple[nn.Module, CheckpointMeta, str]:
    """``load_generator`` on a checkpoint's bytes already read (``name`` is for errors)."""
    tensors, meta = decode_checkpoint(data, name)
    if meta.kind != "generator":
        raise CheckpointError(f"{name}: is a {meta.kind} checkpoint; export a generator from it first")
    return generator_from_tensors(tensors, meta, name, device), meta, checkpoint_id(data, meta)


def _read_header(data: bytes, name: str) -> dict[str, Any]:
    """safetensors layout: u64 little-endian header length, then that many bytes of JSON, then tensor data."""
    if len(data) < 8:
        raise CheckpointError(f"{name}: checkpoint is truncated ({len(data)} bytes); re-export it")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise CheckpointError(f"{name}: checkpoint is corrupt or truncated (header runs past the end)")
    try:
        header = json.loads(data[8 : 8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{name}: checkpoint is corrupt (unreadable header); re-export it") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{name}: checkpoint is corrupt (header is not a mapping)")
    return header
