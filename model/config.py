"""One typed, frozen config tree for patina. Each component owns its section.

Presets are plain functions (``tiny()`` for tests and CI, ``base()`` for the default model) looked up by
name in ``PRESETS``. Configs round-trip through JSON so every checkpoint and run directory carries the exact
config that produced it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

# Conditioning ids. One generator serves several tasks through FiLM modulation (see generator.py).
TASKS: dict[str, int] = {"restore": 0, "retro": 1}


@dataclass(frozen=True)
class GeneratorConfig:
    """U-Net generator sizes. Channels at level i are ``base_channels * channel_mults[i]``."""

    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4, 4)
    num_res_blocks: int = 2  # residual blocks per encoder/decoder level
    num_bottleneck_blocks: int = 2
    num_tasks: int = len(TASKS)
    task_embed_dim: int = 64

    @property
    def num_levels(self) -> int:
        return len(self.channel_mults)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale PatchGAN: ``num_scales`` discriminators on the image downsampled by 2 each time."""

    base_channels: int = 64
    num_layers: int = 3  # stride-2 convs per scale; receptive field ~70 px at 3
    num_scales: int = 2
    conditional: bool = True  # D sees (degraded, candidate): a pix2pix-style conditional GAN


@dataclass(frozen=True)
class DegradationConfig:
    """Which severities training pairs are drawn from (see degradations.PRESETS)."""

    severities: tuple[str, ...] = ("light", "medium", "heavy")
    severity_weights: tuple[float, ...] = (0.25, 0.45, 0.30)


@dataclass(frozen=True)
class LossConfig:
    """Generator loss = sum of weight * term. Discriminator uses the same adversarial mode."""

    gan_mode: str = "hinge"  # "hinge" | "lsgan"
    adversarial: float = 0.05
    l1: float = 1.0
    feature_matching: float = 1.0
    defect_mask: float = 0.5
    mask_pos_weight: float = 4.0  # defects are rare pixels; upweight them in the BCE


@dataclass(frozen=True)
class TrainConfig:
    losses: LossConfig = field(default_factory=LossConfig)
    lr_generator: float = 1e-4
    lr_discriminator: float = 4e-4  # two time-scale update rule (TTUR)
    betas: tuple[float, float] = (0.5, 0.999)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    batch_size: int = 8
    crop: int = 256
    steps: int = 20_000
    checkpoint_every: int = 1_000
    validate_every: int = 1_000
    seed: int = 0


@dataclass(frozen=True)
class PipelineConfig:
    """Batch restoration settings (used by pipeline/)."""

    tile: int = 512  # scans larger than this are restored in overlapping tiles
    overlap: int = 32
    tiles_per_batch: int = 8  # tiles per generator forward: bounds GPU memory whatever the scan size
    batch_size: int = 8  # images per Ray Data batch
    max_pixels: int = 200_000_000  # decompression-bomb guard
    output_format: str = "same"  # same | png | jpeg | tiff | webp

    def __post_init__(self) -> None:
        if self.overlap < 0 or self.tile <= self.overlap:
            raise ValueError(f"tile ({self.tile}) must be larger than overlap ({self.overlap}), overlap >= 0")
        for name in ("tiles_per_batch", "batch_size", "max_pixels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.output_format not in ("same", "png", "jpeg", "tiff", "webp"):
            raise ValueError(
                f"unknown output format {self.output_format!r}; choose same, png, jpeg, tiff or webp"
            )


@dataclass(frozen=True)
class RestorationConfig:
    preset: str = "base"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RestorationConfig:
        return _build(cls, data)

    def replace(self, **changes: Any) -> RestorationConfig:
        return dataclasses.replace(self, **changes)

    def with_train(self, **overrides: Any) -> RestorationConfig:
        """This config with TrainConfig fields overridden; a None override keeps the preset's value (so CLI
        options and flow parameters can pass through unset)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return self.replace(train=dataclasses.replace(self.train, **given))


def _build(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) frozen dataclass from plain JSON data; unknown keys are an error."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        default = getattr(cls(), name) if name in known else None
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value)
        elif isinstance(value, list):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def tiny() -> RestorationConfig:
    """Seconds on a CPU: for tests, CI and smoke runs."""
    return RestorationConfig(
        preset="tiny",
        generator=GeneratorConfig(
            base_channels=8,
            channel_mults=(1, 2),
            num_res_blocks=1,
            num_bottleneck_blocks=1,
            task_embed_dim=16,
        ),
        discriminator=DiscriminatorConfig(base_channels=8, num_layers=2, num_scales=2),
        train=TrainConfig(batch_size=2, crop=64, steps=200, checkpoint_every=50, validate_every=50),
        pipeline=PipelineConfig(tile=128, overlap=16, batch_size=4),
    )


def base() -> RestorationConfig:
    """The default restoration model."""
    return RestorationConfig(preset="base")


PRESETS = {"tiny": tiny, "base": base}


def preset(name: str) -> RestorationConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
