"""Distributed GAN training with Ray Train: one worker per GPU (or CPU workers, gloo), G and D each in DDP.
Family-agnostic: the GAN, its training samples and its validation come from pipeline/training/families.py.

Run layout under RUN_URI (local folder or s3://bucket/prefix):
  config.json          the resolved config of the run's family (RestorationConfig, RetroConfig)
  log.jsonl            a line per logged step / validation: losses, step time, images/s per worker, metrics
  model.safetensors    the best EMA generator by validation PSNR, an inference checkpoint for `patina restore`
  step-NNNNNNN/        Ray Train checkpoints: train.safetensors (G, D, EMA, optimizers, step); grid.png
Ray Train writes the checkpoints and restarts workers from the latest one after a failure; a new run with
--resume continues from the latest with identical state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.fs
import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray.train import Checkpoint, CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from model.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    decode_checkpoint,
    load_checkpoint,
    load_generator,
    save_checkpoint,
    save_generator,
)
from model.formats import IMAGE_EXTENSIONS
from model.gan import GANTraining, stage_of
from model.restoration.inference import default_autocast
from pipeline import s3
from pipeline.storage import Storage, StorageOptions, parse_uri
from pipeline.training.data import clean_dataset, worker_photos
from pipeline.training.families import training
from pipeline.training.job import TrainJob
from pipeline.training.real import is_real_validation

TRAIN_FILE = "train.safetensors"
SHIP_TOLERANCE_DB = 0.1


def train_gan(job: TrainJob) -> dict[str, Any]:
    """Run (or resume) training; returns the final reported metrics. Starts local Ray if none is running."""
    storage = Storage(job.storage)
    # Ray Train workers run in their own working directory: relative local paths must be fixed here.
    job = dataclasses.replace(
        job,
        data=_absolute(job.data),
        val=_absolute(job.val),
        output=_absolute(job.output),
        real=job.real and _absolute(job.real),
    )
    started = storage.exists(storage.join(job.output, "config.json"))
    if started and not job.resume:
        raise ValueError(
            f"{job.output} already holds a run; pass --resume to continue it or choose a new output"
        )
    if started:
        # A resumed run must rebuild the generator it checkpointed: a preset that has changed since (a new
        # head, other widths) would fail to load its weights, after this run's config had been overwritten.
        recorded = json.loads(storage.read_bytes(storage.join(job.output, "config.json")))
        current = json.loads(job.config.to_json())
        # Only the networks must match (their weights are loaded); the data and schedule may change.
        changed = [k for k in ("encoder", "generator", "discriminator") if recorded.get(k) != current.get(k)]
        if changed:
            raise ValueError(
                f"{job.output} was started with another {job.family} {' and '.join(changed)}; resume it with "
                "the code that started it, or start a new run"
            )
    storage.write_bytes(storage.join(job.output, "config.json"), job.config.to_json().encode())
    # A cluster only when asked for (--ray-address or RAY_ADDRESS), else a local Ray of our own: never a
    # stray cluster that a bare ray.init() would join. Never shut down a cluster we joined.
    address = job.ray_address or os.environ.get("RAY_ADDRESS")
    started_ray = not ray.is_initialized() and not address
    if started_ray:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
    elif not ray.is_initialized():
        ray.init(address=address, log_to_driver=False)
    try:
        storage_path, name, filesystem = _ray_storage(job.output, job.storage)
        # CPU workers get an equal share of the cores, and use them all: Ray pins a 1-CPU worker's torch to
        # one thread, which halved training speed on a 2-core box.
        cpus = None if job.gpu else _cpus_per_worker(job.workers)
        trainer = TorchTrainer(
            train_loop,
            train_loop_config={"job": job, "cpu_threads": cpus},
            scaling_config=ScalingConfig(
                num_workers=job.workers, use_gpu=job.gpu, resources_per_worker={"CPU": cpus} if cpus else None
            ),
            run_config=RunConfig(
                name=name,
                storage_path=storage_path,
                storage_filesystem=filesystem,
                checkpoint_config=CheckpointConfig(num_to_keep=2),
                failure_config=FailureConfig(max_failures=job.max_failures),
            ),
            # Decoded once, before the workers take their CPUs: a small clean set, read many times.
            datasets=_datasets(job, storage),
            dataset_config=DataConfig(datasets_to_split=[]),  # workers shard by row index (training/data.py)
        )
        return trainer.fit().metrics
    finally:
        if started_ray:
            ray.shutdown()


def _cpus_per_worker(workers: int) -> int:
    """CPU workers take an equal share of a node (on one machine: of all its cores), sized on the smallest
    node so that every worker fits wherever Ray places it."""
    per_node = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"] and n["Resources"].get("CPU")]
    if not per_node:
        return 1
    return max(1, int(min(per_node)) // math.ceil(workers / len(per_node)))


def _data_label(job: TrainJob) -> str:
    """What a checkpoint says it learned from: the clean photos, and the real ones when used."""
    return job.data if not job.real else f"{job.data} + real training split of {job.real}"


def _absolute(uri: str) -> str:
    parsed = parse_uri(uri)
    return uri if parsed.scheme == "s3" else os.path.abspath(parsed.key)


def _ray_storage(run_uri: str, options: StorageOptions) -> tuple[str, str, pyarrow.fs.FileSystem | None]:
    """Ray Train wants (storage_path, run name, filesystem): split RUN_URI at its last component."""
    parsed = parse_uri(run_uri)
    if parsed.scheme != "s3":
        path = os.path.abspath(parsed.key)
        return os.path.dirname(path), os.path.basename(path), None
    parent, _, name = parsed.key.rstrip("/").rpartition("/")
    return f"{parsed.bucket}/{parent}".rstrip("/"), name, s3.arrow_filesystem(options)


def _datasets(job: TrainJob, storage: Storage) -> dict[str, Any]:
    """The clean photos, and with ``job.real`` the training split of the real old photos (never their
    validation fifth), each decoded once by Ray Data."""
    datasets = {"clean": clean_dataset(job.data, storage).materialize()}
    if job.real:
        keep = lambda uri: not is_real_validation(uri)  # noqa: E731
        datasets["real"] = clean_dataset(job.real, storage, keep=keep).materialize()
    return datasets


def train_loop(loop_config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    job: TrainJob = loop_config["job"]
    cfg, storage = job.config, Storage(job.storage)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = ray.train.torch.get_device()
    if device.type == "cpu" and loop_config.get("cpu_threads"):
        torch.set_num_threads(loop_config["cpu_threads"])
    torch.manual_seed(cfg.train.seed)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    plug = training(job.family)
    gan = plug.make_gan(cfg, device, ray.train.torch.prepare_model, default_autocast(device))
    state = _resume(gan, storage, job)
    if job.init and gan.step == 0:
        _warm_start(gan, storage, job.init)
    photos = worker_photos(ray.train.get_dataset_shard("clean"), rank, world)
    t = cfg.train
    if job.real:
        real = worker_photos(ray.train.get_dataset_shard("real"), rank, world)
        pool = plug.make_pool(photos, cfg, rank, device, real=real)
    else:
        pool = plug.make_pool(photos, cfg, rank, device)
    val_pairs = _val_pairs(job, storage) if rank == 0 else []
    budget = state.budget(t)

    while True:
        started = time.perf_counter()
        progress = _agreed(budget.progress(gan.step), world, device)
        if progress >= 1.0:  # resumed a run that had already finished
            break
        stage_before = stage_of(progress, t.gan_start)
        batch = pool.batch(gan.step, t.batch_size)
        losses = gan.train_step(batch, progress)
        seconds = time.perf_counter() - started
        budget.spend(seconds)
        line = {
            "step": gan.step,
            "progress": progress,
            **losses,
            "step_s": seconds,
            "images_per_s_per_worker": t.batch_size / seconds,
        }
        if rank == 0 and (gan.step % job.log_every == 0 or gan.step == 1):
            state.log.append(line)
        next_progress = _agreed(budget.progress(gan.step), world, device)  # every rank decides alike
        finished = next_progress >= 1.0
        stage_ends = finished or stage_of(next_progress, t.gan_start) != stage_before
        paused = job.pause_at_step is not None and gan.step >= job.pause_at_step and not finished
        if gan.step % t.checkpoint_every and not stage_ends and not paused:
            continue
        checkpoint_started = time.perf_counter()
        metrics = {**line, "param_max_diff": _param_spread(gan, world)}
        checkpoint = None
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                metrics.update(plug.validate(gan, val_pairs, tmp))
                if stage_before == 1 and metrics["val_psnr"] > state.best_psnr:
                    state.best_psnr = metrics["val_psnr"]
                    _export(gan, storage, job, metrics, "model.safetensors")
                if stage_ends:  # each stage's final EMA, then the shipped pick between them
                    state.stages[str(stage_before)] = _val_summary(metrics)
                    _export(gan, storage, job, metrics, f"stage{stage_before}.safetensors")
                    if finished:
                        metrics["shipped_stage"] = _ship(storage, job, state.stages)
                state.log.append(metrics)
                budget.spend(time.perf_counter() - checkpoint_started)
                tensors, extras = gan.state_tensors()
                extras.update(state.to_extra(budget))
                meta = CheckpointMeta(
                    config=cfg,
                    family=job.family,
                    kind="training",
                    step=gan.step,
                    data=_data_label(job),
                    extra=extras,
                )
                save_checkpoint(os.path.join(tmp, TRAIN_FILE), tensors, meta)
                storage.write_bytes(storage.join(job.output, "log.jsonl"), _jsonl(state.log))
                checkpoint = Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"step-{gan.step:07d}")
        if finished or paused:
            break


class Budget:
    """The run's budget: ``steps``, or ``seconds`` of training wall time (validation and checkpoints
    included) when given. ``progress`` in [0, 1] drives the stage switch and the learning rates."""

    def __init__(self, steps: int, seconds: float | None, elapsed_s: float = 0.0):
        self.steps, self.seconds, self.elapsed_s = steps, seconds, elapsed_s

    def spend(self, seconds: float) -> None:
        self.elapsed_s += seconds

    def progress(self, step: int) -> float:
        if self.seconds is None:
            return min(step / self.steps, 1.0)
        return min(self.elapsed_s / self.seconds, 1.0)


def _agreed(value: float, world: int, device: torch.device) -> float:
    """Rank 0's value on every rank: with a time budget each rank's clock differs, and all ranks must
    switch stage and stop on the same step or DDP hangs."""
    if world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())


@dataclass
class _RunState:
    """What a training checkpoint carries besides the weights, so a resumed run goes on where it was: the
    best validation PSNR, the log, the training wall time spent (a --time-budget run's progress, hence its
    stage and learning rate) and each finished stage's summary."""

    best_psnr: float = -math.inf
    log: list[dict[str, Any]] = field(default_factory=list)
    elapsed_s: float = 0.0
    stages: dict[str, dict[str, float]] = field(default_factory=dict)  # stage -> its final val summary

    def budget(self, train: Any) -> Budget:
        """The budget from where this state stands: a resumed time budget continues, never restarts."""
        return Budget(train.steps, train.time_budget_s, self.elapsed_s)

    def to_extra(self, budget: Budget) -> dict[str, Any]:
        return {
            "best_val_psnr": self.best_psnr,
            "log": self.log,
            "elapsed_s": budget.elapsed_s,
            "stages": self.stages,
        }

    @classmethod
    def from_extra(cls, extra: dict[str, Any]) -> _RunState:
        return cls(
            float(extra["best_val_psnr"]),
            list(extra.get("log", [])),
            float(extra.get("elapsed_s", 0.0)),
            dict(extra.get("stages", {})),
        )


def _val_summary(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if k in ("val_psnr", "val_ssim", "val_hf_ratio", "step")}


def _ship(storage: Storage, job: TrainJob, stages: dict[str, dict[str, float]]) -> int:
    """Copy the stage the validation supports to model.safetensors: stage 2 if it is within
    SHIP_TOLERANCE_DB of stage 1's PSNR (the adversarial stage then bought texture without losing
    fidelity), else stage 1. Returns the stage shipped."""
    pick = 1
    if "2" in stages and (
        "1" not in stages or stages["2"]["val_psnr"] >= stages["1"]["val_psnr"] - SHIP_TOLERANCE_DB
    ):
        pick = 2
    data = storage.read_bytes(storage.join(job.output, f"stage{pick}.safetensors"))
    storage.write_bytes(storage.join(job.output, "model.safetensors"), data)
    return pick


def _val_pairs(job: TrainJob, storage: Storage):
    """The fixed validation set, from a local folder (present on the rank-0 node) or an s3:// prefix, which
    is copied to a temporary folder first so validation works on any node of a cluster."""
    val_set = training(job.family).val_set
    if parse_uri(job.val).scheme != "s3":
        return val_set(Path(job.val), job.val_limit, job.val_side)
    with tempfile.TemporaryDirectory(prefix="patina-val-") as tmp:
        storage.download_folder(job.val, tmp, IMAGE_EXTENSIONS)
        return val_set(Path(tmp), job.val_limit, job.val_side)


def _resume(gan: GANTraining, storage: Storage, job: TrainJob) -> _RunState:
    """Load the latest checkpoint if there is one (worker restart or --resume): the one Ray Train hands
    over, else the newest whole ``step-*`` checkpoint of this run. Ray Train 2.60 hands none to a worker
    group it restarts after a worker died (measured: a killed worker retrained from step 1), and every
    step-* under the run's output belongs to this run (a new run refuses an output that holds one)."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            tensors, meta = load_checkpoint(os.path.join(folder, TRAIN_FILE))
    else:
        found = _latest_run_checkpoint(storage, job.output)
        if found is None:
            return _RunState()
        tensors, meta = found
    gan.load_state_tensors({k: v.to(gan.device) for k, v in tensors.items()}, meta.extra)
    return _RunState.from_extra(meta.extra)


def _warm_start(gan: GANTraining, storage: Storage, uri: str) -> None:
    """Start G and its EMA from a generator checkpoint of the same network (strict: a checkpoint of another
    shape is a one-line error, not a partial load)."""
    generator, _, _ = load_generator(uri, storage)
    weights = generator.state_dict()
    try:
        gan.unwrapped_generator.load_state_dict(weights)
        gan.ema.load_state_dict(weights)
    except RuntimeError as error:
        raise ValueError(f"--init {uri}: not a checkpoint of this run's generator ({error})") from None


def _latest_run_checkpoint(storage: Storage, output: str) -> tuple[dict[str, torch.Tensor], Any] | None:
    """The newest step-NNNNNNN/TRAIN_FILE directly under ``output`` (never a nested run's) that decodes whole:
    a worker killed while writing one leaves it partial, and the one before is taken then. Storage errors
    are raised, not skipped: every rank must resume from the same step."""
    pattern = re.compile(r"^step-(\d+)/" + re.escape(TRAIN_FILE) + "$")
    root = output.rstrip("/") + "/"
    found = []
    for info in storage.list(output):
        match = pattern.match(info.uri[len(root) :]) if info.uri.startswith(root) else None
        if match:
            found.append((int(match.group(1)), info.uri))
    for _, uri in sorted(found, reverse=True):
        try:
            return decode_checkpoint(storage.read_bytes(uri), uri)
        except CheckpointError:
            continue
    return None


def _export(gan: GANTraining, storage: Storage, job: TrainJob, metrics: dict[str, float], name: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        val = {k: float(v) for k, v in metrics.items() if k.startswith("val_")}
        save_generator(
            path,
            gan.ema,
            job.config,
            step=gan.step,
            data=_data_label(job),
            metrics=val,
            family_name=job.family,
        )
        storage.write_file(storage.join(job.output, name), path)


def _param_spread(gan: GANTraining, world: int) -> float:
    """Largest difference of any G or D parameter between ranks: 0 when DDP keeps replicas identical."""
    flat = torch.cat(
        [p.detach().flatten().float() for p in (*gan.generator.parameters(), *gan.discriminator.parameters())]
    )
    if world == 1:
        return 0.0
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines).encode()
