"""Distributed GAN training with Ray Train: one worker per GPU (or CPU workers, gloo), G and D each in DDP.

Run layout under RUN_URI (local folder or s3://bucket/prefix):
  config.json          the resolved RestorationConfig
  log.jsonl            a line per logged step / validation: losses, step time, images/s per worker, metrics
  model.safetensors    the best EMA generator by validation PSNR, an inference checkpoint for `patina restore`
  step-NNNNNNN/        Ray Train checkpoints: train.safetensors (G, D, EMA, optimizers, step), grid.png
Ray Train writes the checkpoints and restarts workers from the latest one after a failure; a new run with
--resume continues from the latest with identical state.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.fs
import ray
import ray.train
import ray.train.torch
import torch
import torch.distributed as dist
from ray.train import Checkpoint, CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from model.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint, save_generator
from model.config import RestorationConfig
from model.gan import RestorationGAN
from model.validation import build_val_set, generator_restorer, grid, score
from pipeline.manifest import IMAGE_EXTENSIONS
from pipeline.storage import Storage, StorageOptions, parse_uri
from pipeline.train_data import PairSampler, clean_dataset, worker_photos

TRAIN_FILE = "train.safetensors"


@dataclass(frozen=True)
class TrainJob:
    data: str  # clean photos: a manifest .parquet or a folder / prefix
    val: str  # local folder of clean validation photos
    output: str  # RUN_URI
    config: RestorationConfig
    workers: int = 1
    gpu: bool = False
    resume: bool = False
    degrade_on: str = "device"  # "device": degradations on the training device | "cpu": CPU prefetch thread
    val_limit: int | None = 8  # validation photos used during training (all: None)
    val_side: int = 256  # centre crop of each validation photo, bounding validation cost
    log_every: int = 10
    max_failures: int = 2
    ray_address: str | None = None  # a cluster (ray://host:10001 or auto); None: local Ray in-process
    storage: StorageOptions = field(default_factory=StorageOptions)


def train_gan(job: TrainJob) -> dict[str, Any]:
    """Run (or resume) training; returns the final reported metrics. Starts local Ray if none is running."""
    storage = Storage(job.storage)
    # Ray Train workers run in their own working directory: relative local paths must be fixed here.
    job = dataclasses.replace(
        job, data=_absolute(job.data), val=_absolute(job.val), output=_absolute(job.output)
    )
    if job.degrade_on not in ("device", "cpu"):
        raise ValueError(f"unknown --degrade-on {job.degrade_on!r}; choose device or cpu")
    started = storage.exists(storage.join(job.output, "config.json"))
    if started and not job.resume:
        raise ValueError(
            f"{job.output} already holds a run; pass --resume to continue it or choose a new output"
        )
    storage.write_bytes(storage.join(job.output, "config.json"), job.config.to_json().encode())
    started_ray = not ray.is_initialized() and job.ray_address is None  # never shut down a cluster we joined
    if started_ray:
        ray.init(include_dashboard=False, log_to_driver=False)
    elif not ray.is_initialized():
        ray.init(address=job.ray_address, log_to_driver=False)
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
            datasets={"clean": clean_dataset(job.data, storage).materialize()},
            dataset_config=DataConfig(datasets_to_split=[]),  # workers shard by row index (train_data.py)
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
    kwargs: dict[str, Any] = {"region": options.region} if options.region else {}
    if options.endpoint_url:
        scheme, _, host = options.endpoint_url.partition("://")
        kwargs.update(endpoint_override=host, scheme=scheme)
    return f"{parsed.bucket}/{parent}".rstrip("/"), name, pyarrow.fs.S3FileSystem(**kwargs)


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
    gan = RestorationGAN(
        cfg,
        device,
        wrap=ray.train.torch.prepare_model,
        autocast_dtype=torch.bfloat16 if device.type == "cuda" else None,
    )
    best_psnr, log = _resume(gan, storage, job)
    photos = worker_photos(ray.train.get_dataset_shard("clean"), rank, world)
    sampler_device = device if job.degrade_on == "device" else torch.device("cpu")
    sampler = PairSampler(
        photos, cfg.train.crop, cfg.degradation.severities, cfg.degradation.severity_weights,
        cfg.train.seed, rank, sampler_device,
    )  # fmt: skip
    val_pairs = _val_pairs(job, storage) if rank == 0 else []

    while gan.step < cfg.train.steps:
        started = time.perf_counter()
        batch = sampler.batch(gan.step, cfg.train.batch_size)
        batch.degraded, batch.clean, batch.defect_mask = (
            t.to(device, non_blocking=True) for t in (batch.degraded, batch.clean, batch.defect_mask)
        )
        losses = gan.train_step(batch)
        seconds = time.perf_counter() - started
        line = {
            "step": gan.step,
            **losses,
            "step_s": seconds,
            "images_per_s_per_worker": len(batch.clean) / seconds,
        }
        if rank == 0 and (gan.step % job.log_every == 0 or gan.step == 1):
            log.append(line)
        if gan.step % cfg.train.checkpoint_every and gan.step < cfg.train.steps:
            continue
        metrics = {**line, "param_max_diff": _param_spread(gan, world)}
        checkpoint = None
        with tempfile.TemporaryDirectory() as tmp:
            if rank == 0:
                metrics.update(_validate(gan, val_pairs, tmp))
                if metrics["val_psnr"] > best_psnr:
                    best_psnr = metrics["val_psnr"]
                    _export(gan, storage, job, metrics)
                log.append(metrics)
                tensors, extras = gan.state_tensors()
                extras.update(best_val_psnr=best_psnr, log=log)
                meta = CheckpointMeta(config=cfg, kind="training", step=gan.step, data=job.data, extra=extras)
                save_checkpoint(os.path.join(tmp, TRAIN_FILE), tensors, meta)
                storage.write_bytes(storage.join(job.output, "log.jsonl"), _jsonl(log))
                checkpoint = Checkpoint.from_directory(tmp)
            ray.train.report(metrics, checkpoint=checkpoint, checkpoint_dir_name=f"step-{gan.step:07d}")


def _val_pairs(job: TrainJob, storage: Storage):
    """The fixed validation set, from a local folder (present on the rank-0 node) or an s3:// prefix, which
    is copied to a temporary folder first so validation works on any node of a cluster."""
    if parse_uri(job.val).scheme != "s3":
        return build_val_set(Path(job.val), seed=0, limit=job.val_limit, max_side=job.val_side)
    with tempfile.TemporaryDirectory(prefix="patina-val-") as tmp:
        storage.download_folder(job.val, tmp, IMAGE_EXTENSIONS)
        return build_val_set(Path(tmp), seed=0, limit=job.val_limit, max_side=job.val_side)


def _resume(gan: RestorationGAN, storage: Storage, job: TrainJob) -> tuple[float, list[dict[str, Any]]]:
    """Load the latest Ray Train checkpoint if there is one (worker restart or --resume)."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return -math.inf, []
    with checkpoint.as_directory() as folder:
        tensors, meta = load_checkpoint(os.path.join(folder, TRAIN_FILE))
    gan.load_state_tensors({k: v.to(gan.device) for k, v in tensors.items()}, meta.extra)
    return float(meta.extra["best_val_psnr"]), list(meta.extra.get("log", []))


@torch.no_grad()
def _validate(gan: RestorationGAN, pairs, folder: str) -> dict[str, float]:
    """PSNR / SSIM of the EMA generator and of the degraded input on the fixed validation set."""

    restore = generator_restorer(gan.ema, gan.autocast_dtype)
    model, degraded = score(pairs, restore), score(pairs, None)
    grid(pairs, restore).save(os.path.join(folder, "grid.png"))
    metrics = {}
    for severity in model:
        metrics[f"val_{severity}_psnr"], metrics[f"val_{severity}_ssim"] = (
            model[severity].psnr,
            model[severity].ssim,
        )
        metrics[f"val_{severity}_psnr_degraded"] = degraded[severity].psnr
        metrics[f"val_{severity}_ssim_degraded"] = degraded[severity].ssim
    metrics["val_psnr"] = float(np.mean([s.psnr for s in model.values()]))
    return metrics


def _export(gan: RestorationGAN, storage: Storage, job: TrainJob, metrics: dict[str, float]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.safetensors")
        val = {k: float(v) for k, v in metrics.items() if k.startswith("val_")}
        save_generator(path, gan.ema, job.config, step=gan.step, data=job.data, metrics=val)
        storage.write_file(storage.join(job.output, "model.safetensors"), path)


def _param_spread(gan: RestorationGAN, world: int) -> float:
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
