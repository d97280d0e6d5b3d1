"""The one typed config of a training run: ``TrainJob`` (data, output, workers, resume) nesting the model
family's config (``RestorationConfig``, ``RetroConfig``: networks, losses, schedule). ``train_job`` is the one
place a run is built from a user's options (`patina train` and the train-gan flow). No torch or Ray here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from model.config import TrainConfig
from model.restoration.config import DegradationConfig
from model.restoration.config import preset as restoration_preset
from model.retro.config import preset as retro_preset
from pipeline.storage import StorageOptions

PRESETS = {"restoration": restoration_preset, "retro": retro_preset}  # family -> preset name -> config


@dataclass(frozen=True)
class TrainJob:
    data: str  # clean photos: a manifest .parquet or a folder / prefix
    val: str  # local folder of clean validation photos
    output: str  # RUN_URI
    config: Any  # the family's config: RestorationConfig, RetroConfig
    workers: int = 1
    gpu: bool = False
    resume: bool = False
    val_limit: int | None = 8  # validation photos used during training (all: None)
    val_side: int = 256  # centre crop of each validation photo, bounding validation cost
    log_every: int = 10
    pause_at_step: int | None = None  # checkpoint and stop here, to go on later with resume (time-sliced use)
    max_failures: int = 2
    ray_address: str | None = None  # a cluster (ray://host:10001 or auto); None: local Ray in-process
    storage: StorageOptions = field(default_factory=StorageOptions)
    family: str = "restoration"  # model/families.py: which GAN, samples and validation the run trains
    # A generator checkpoint of the same network to start from (fine-tuning on a new recipe); a resumed run
    # continues from its own checkpoint instead.
    init: str | None = None
    # A folder / prefix of real old photos (restoration only): its training split (training/real.py) joins
    # the pairs as a domain, synthetic defects painted on real prints; the validation fifth is never read.
    real: str | None = None


def train_job(
    data: str,
    val: str,
    output: str,
    *,
    family: str = "restoration",
    preset: str = "small",
    time_budget: str | None = None,
    mixture: str | None = None,
    real_fraction: float | None = None,
    endpoint_url: str | None = None,
    **options: Any,
) -> TrainJob:
    """A run of ``family``'s ``preset``. ``options`` are ``TrainConfig`` fields (steps, batch_size, crop,
    seed, learning rates, ...) and ``TrainJob`` fields (workers, gpu, resume, val_limit, ray_address); None
    keeps the default, so callers pass their options through unset. ``time_budget``: 90s, 100m, 2h."""
    if family not in PRESETS:
        raise ValueError(f"unknown model family {family!r}; choose one of {sorted(PRESETS)}")
    if (mixture or options.get("real") or real_fraction is not None) and family != "restoration":
        raise ValueError("--mixture and --real are restoration options (retro draws looks, not damage)")
    if real_fraction is not None and not 0.0 <= real_fraction <= 1.0:
        raise ValueError(f"--real-fraction must be in [0, 1], got {real_fraction}")
    given = {k: v for k, v in options.items() if v is not None}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(given) - train_fields - {f.name for f in dataclasses.fields(TrainJob)}
    if unknown:
        raise TypeError(f"train_job() got unknown options {sorted(unknown)}")
    if time_budget:
        given["time_budget_s"] = parse_duration(time_budget)
    cfg = PRESETS[family](preset).with_train(**{k: v for k, v in given.items() if k in train_fields})
    if mixture or real_fraction is not None:
        d = cfg.degradation
        cfg = cfg.replace(
            degradation=DegradationConfig(
                mixture=mixture or d.mixture,
                real_fraction=d.real_fraction if real_fraction is None else real_fraction,
            )
        )
    return TrainJob(
        data=data,
        val=val,
        output=output,
        config=cfg,
        storage=StorageOptions(endpoint_url=endpoint_url),
        family=family,
        **{k: v for k, v in given.items() if k not in train_fields},
    )


def parse_duration(text: str) -> float:
    """'90s', '100m', '2h' or plain seconds -> seconds; anything else is a one-line error."""
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise ValueError(f"cannot read time budget {text!r}; write it like 90s, 100m or 2h") from None
    if seconds <= 0:
        raise ValueError(f"time budget must be positive, got {text!r}")
    return seconds
