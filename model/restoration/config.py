"""The restoration family's typed, frozen config tree. Each component owns its section.

Presets are plain functions looked up by name in ``PRESETS``: ``tiny()`` for tests and CI, ``small()`` for
the default model (sized to train on a 2-core CPU), ``large()`` for GPUs. Configs round-trip through JSON
so every checkpoint and run directory carries the exact config that produced it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class GeneratorConfig:
    """Half-resolution U-Net sizes (see generator.py): ``widths[i]`` channels at level i (the last is the
    bottleneck), ``blocks[i]`` residual blocks in the encoder and again in the decoder at level i."""

    widths: tuple[int, ...] = (32, 64, 128, 192)
    blocks: tuple[int, ...] = (1, 1, 2)
    bottleneck_blocks: int = 2
    tone_head: int = 0

    def __post_init__(self) -> None:
        if self.tone_head < 0:
            raise ValueError(f"tone_head is a hidden width (0 = none), got {self.tone_head}")
        if len(self.widths) < 2 or len(self.blocks) != len(self.widths) - 1:
            raise ValueError(
                f"generator needs >= 2 widths and one block count per level above the bottleneck, got "
                f"widths={self.widths} blocks={self.blocks}"
            )


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale PatchGAN: ``num_scales`` discriminators on the image downsampled by 2 each time."""

    base_channels: int = 32  # half pix2pixHD's 64: D runs 3 forwards per step and must not dominate stage 2
    num_layers: int = 3  # stride-2 convs per scale; receptive field ~70 px at 3
    num_scales: int = 2
    conditional: bool = True  # D sees (degraded, candidate): a pix2pix-style conditional GAN


@dataclass(frozen=True)
class DegradationConfig:
    """Where training pairs come from: ``mixture`` names a sampler in degradation/mixture.py (the blind
    mixture the default model is trained on), or one engine severity preset (light | medium | heavy)."""

    mixture: str = "blind"


@dataclass(frozen=True)
class LossConfig:
    """Generator loss = sum of weight * term. The adversarial terms only act in stage 2 (see gan.py)."""

    gan_mode: str = "hinge"  # "hinge" | "lsgan"
    adversarial: float = 0.01  # small: the PSNR-oriented model must stay close to the clean photo
    reconstruction: float = 1.0  # Charbonnier: keeps edges and fine detail (L1-like)
    mse: float = 10.0  # pulls large tone and colour errors first: 0.9-1.4 dB more in the first 300 steps
    feature_matching: float = 0.05
    defect_mask: float = 0.1
    mask_pos_weight: float = 4.0  # defects are rare pixels; upweight them in the BCE


@dataclass(frozen=True)
class TrainConfig:
    """Two stages in one run: reconstruction until ``gan_start`` of the budget, then adversarial fine-tuning.
    The budget is ``steps``, or ``time_budget_s`` of training wall time when set; learning rates follow the
    budget (linear warm-up, then cosine decay to ``lr_min_fraction`` within each stage)."""

    losses: LossConfig = field(default_factory=LossConfig)
    lr_generator: float = 4e-4
    lr_gan_generator: float = 5e-5  # stage 2 fine-tunes: a tenth of stage 1's peak (Real-ESRGAN practice)
    lr_discriminator: float = 2e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    lr_min_fraction: float = 0.02
    gan_start: float = 0.8  # fraction of the budget spent on stage 1; 1.0 = reconstruction only
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    batch_size: int = 8
    crop: int = 256
    steps: int = 20_000
    time_budget_s: float | None = None
    checkpoint_every: int = 500
    pool_size: int = 1024  # degraded pairs kept in memory (see pipeline/training/data.PairPool)
    pool_refresh: int = 2  # new pairs rendered per step, in the background, replacing the oldest
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.gan_start <= 1.0:
            raise ValueError(f"gan_start must be in [0, 1], got {self.gan_start}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time budget must be positive, got {self.time_budget_s} s")


class ModelConfig:
    """What every family's top-level config (a frozen dataclass with ``preset`` and ``train``) can do: round
    trip through JSON, and take TrainConfig overrides (retro's RetroConfig shares it)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return _build(cls, data)

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def with_train(self, **overrides: Any) -> Self:
        """This config with TrainConfig fields overridden; a None override keeps the preset's value (so CLI
        options and flow parameters can pass through unset)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return self.replace(train=dataclasses.replace(self.train, **given))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class RestorationConfig(ModelConfig):
    preset: str = "small"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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
        generator=GeneratorConfig(widths=(16, 32), blocks=(1,), bottleneck_blocks=1, tone_head=16),
        discriminator=DiscriminatorConfig(base_channels=8, num_layers=2, num_scales=2),
        train=TrainConfig(
            batch_size=2,
            crop=64,
            steps=200,
            checkpoint_every=50,
            warmup_steps=10,
            pool_size=16,
            ema_decay=0.9,
        ),
    )


def small() -> RestorationConfig:
    """The default model, sized to train on a 2-core CPU: ~94 GFLOPs per megapixel, 3.0 M parameters.
    32 crops of 128 px per step: as many pixels as 8 of 256 px, four times as many photos and degradations
    per gradient (measured slightly faster to learn, PERFORMANCE.md)."""
    return RestorationConfig(
        preset="small",
        # No tone head yet: a 100-minute run with one (docs/MODEL.md, "The tone head") gained 0.2-0.7 dB on
        # every degraded set but moved clean photos by ~1 level (40.0 -> 37.0 dB) and smoothed more.
        train=TrainConfig(
            batch_size=32, crop=128, lr_generator=1e-3, lr_gan_generator=1e-4, pool_size=2048, pool_refresh=8
        ),
    )


def large() -> RestorationConfig:
    """For GPUs (NAFNet-w32 class compute): ~480 GFLOPs per megapixel."""
    return RestorationConfig(
        preset="large",
        generator=GeneratorConfig(widths=(64, 128, 256, 384), blocks=(1, 2, 2), bottleneck_blocks=4),
        discriminator=DiscriminatorConfig(base_channels=64),
        train=TrainConfig(batch_size=16, crop=256, pool_size=4096, pool_refresh=4, lr_generator=2e-4),
    )


PRESETS = {"tiny": tiny, "small": small, "large": large}
DEFAULT_PRESET = "small"


def preset(name: str) -> RestorationConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
