"""What every model family's config shares: the discriminator, the losses, the two-stage training schedule,
and ``ModelConfig`` (JSON round trip, replace, TrainConfig overrides). Each family's own tree (its networks,
its data) lives in its folder: model/restoration/config.py, model/retro/config.py."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Multi-scale PatchGAN: ``num_scales`` discriminators on the image downsampled by 2 each time."""

    base_channels: int = 32  # half pix2pixHD's 64: D runs 3 forwards per step and must not dominate stage 2
    num_layers: int = 3  # stride-2 convs per scale; receptive field ~70 px at 3
    num_scales: int = 2
    conditional: bool = True  # D sees (degraded, candidate): a pix2pix-style conditional GAN


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
    # Extra reconstruction weight on defect pixels (and a 1 px rim): a crack is a few hundred pixels of a
    # crop, and unweighted its fill is lost in the average. 0 = every pixel alike (the earlier models).
    masked: float = 0.0


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
