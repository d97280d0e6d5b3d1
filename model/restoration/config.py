"""The restoration family's typed, frozen config tree. Each component owns its section.

Presets are plain functions looked up by name in ``PRESETS``: ``tiny()`` for tests and CI, ``small()`` for
the default model (sized to train on a 2-core CPU), ``large()`` for GPUs. Configs round-trip through JSON
so every checkpoint and run directory carries the exact config that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.config import DiscriminatorConfig, LossConfig, ModelConfig, TrainConfig


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
class DegradationConfig:
    """Where training pairs come from: ``mixture`` names a sampler in degradation/mixture.py (``local``, the
    default model's: local damage, tone kept; ``blind``, the earlier default), or one engine severity preset
    (light | medium | heavy)."""

    mixture: str = "local"
    # Share of pairs painted on real old photos when the run is given some (TrainJob.real, data.PairPool).
    real_fraction: float = 0.25


@dataclass(frozen=True)
class RestorationConfig(ModelConfig):
    preset: str = "small"
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


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
        # Detect, then fill: the mask head is the detector (BCE at weight 1, positives at 2 only: a false
        # mask costs more than a missed crack) and defect pixels weigh 10x in the reconstruction.
        train=TrainConfig(
            losses=LossConfig(defect_mask=1.0, mask_pos_weight=2.0, masked=9.0),
            batch_size=32,
            crop=128,
            lr_generator=1e-3,
            lr_gan_generator=1e-4,
            pool_size=2048,
            pool_refresh=8,
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
