"""The retro family's typed, frozen config: style encoder, conditioned generator, discriminator, training.

Presets by name in ``PRESETS``: ``tiny()`` for tests and CI, ``small()`` for the shipped model (trained on
the 2-core CPU box). The discriminator and the training schedule reuse the restoration family's sections:
one trainer (pipeline/training/driver.py) runs both families.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.config import DiscriminatorConfig, LossConfig, ModelConfig, TrainConfig


@dataclass(frozen=True)
class EncoderConfig:
    """The style encoder reads a reference squeezed to ``side`` x ``side`` px (stride-2 convs of
    ``widths``) plus whole-image colour statistics; it returns parameters, a class and a ``code_dim`` code."""

    side: int = 128
    widths: tuple[int, ...] = (32, 64, 96, 128)
    hidden: int = 256
    code_dim: int = 64


@dataclass(frozen=True)
class StyleGeneratorConfig:
    """Three branches, all conditioned on the style: ``point`` channels of per-pixel 1x1 layers (the print's
    tone and colour), a ``field`` branch on a ``field_side`` px view of the whole photo (vignetting, washes,
    halation), and ``local`` channels of 3x3 residual blocks at half resolution (softness, fine texture)."""

    point: int = 64
    point_layers: int = 3
    lut: int = 17  # grid points per colour axis of the point branch's 3D LUT
    field: int = 32
    field_side: int = 64
    local: int = 48
    local_blocks: int = 2


@dataclass(frozen=True)
class RetroLossConfig(LossConfig):
    """Restoration's loss weights plus the encoder's: parameter regression (MSE on the [0, 1] targets),
    sensitivity class (cross-entropy), and agreement of the codes of two references with the same look."""

    params: float = 1.0
    sensitivity: float = 0.3
    code_agreement: float = 0.1
    mse: float = 10.0
    defect_mask: float = 0.0


@dataclass(frozen=True)
class RetroTrainConfig(TrainConfig):
    losses: RetroLossConfig = field(default_factory=RetroLossConfig)


@dataclass(frozen=True)
class RetroConfig(ModelConfig):
    preset: str = "small"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: StyleGeneratorConfig = field(default_factory=StyleGeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: RetroTrainConfig = field(default_factory=RetroTrainConfig)


def tiny() -> RetroConfig:
    """Seconds on a CPU: for tests, CI and smoke runs."""
    return RetroConfig(
        preset="tiny",
        encoder=EncoderConfig(side=64, widths=(8, 16), hidden=32, code_dim=8),
        generator=StyleGeneratorConfig(
            point=8, point_layers=1, field=8, field_side=16, local=8, local_blocks=1
        ),
        discriminator=DiscriminatorConfig(base_channels=8, num_layers=2, num_scales=2),
        train=RetroTrainConfig(
            batch_size=2,
            crop=64,
            steps=200,
            checkpoint_every=50,
            warmup_steps=10,
            pool_size=8,
            pool_refresh=1,
            ema_decay=0.9,
        ),
    )


def small() -> RetroConfig:
    """The shipped model, sized for the 2-core CPU box: whole photos at 160 px, 16 pairs per step."""
    return RetroConfig(
        preset="small",
        train=RetroTrainConfig(
            batch_size=16,
            crop=160,
            lr_generator=1e-3,
            lr_gan_generator=1e-4,
            pool_size=1024,
            pool_refresh=4,
            warmup_steps=200,
        ),
    )


PRESETS = {"tiny": tiny, "small": small}
DEFAULT_PRESET = "small"


def preset(name: str) -> RetroConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown retro preset {name!r}; choose one of {sorted(PRESETS)}") from None
