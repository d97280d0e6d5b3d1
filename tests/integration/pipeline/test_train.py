"""Ray Train on 2 CPU workers (gloo), `tiny` preset: DDP replicas agree, checkpoints resume exactly, the
exported generator restores images, and data can come from a folder or the tests' S3 server."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from model.checkpoints import decode_checkpoint, load_checkpoint
from model.restoration.config import tiny
from pipeline.batch.config import PipelineConfig
from pipeline.batch.restorer import Restorer
from pipeline.storage import StorageOptions
from pipeline.training.driver import TRAIN_FILE, train_gan
from pipeline.training.job import TrainJob

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@pytest.fixture(scope="module")
def photo_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    (root / "train").mkdir()
    (root / "val").mkdir()
    for name in PHOTOS:
        Image.fromarray(getattr(skimage.data, name)()).resize((120, 90)).save(root / "train" / f"{name}.jpg")
    Image.fromarray(skimage.data.camera()).resize((64, 64)).save(root / "val" / "camera.png")
    return root


def _job(data: str, val: Path, output: str, steps: int, **kwargs) -> TrainJob:
    cfg = tiny()
    train = dataclasses.replace(cfg.train, steps=steps, batch_size=2, crop=32, checkpoint_every=2)
    return TrainJob(
        data=data, val=str(val), output=output, config=cfg.replace(train=train), workers=2, **kwargs
    )


def test_two_workers_checkpoint_resume_export(ray_local, photo_folders, s3_server, tmp_path):
    run = tmp_path / "run"
    metrics = train_gan(
        _job(
            str(photo_folders / "train"),
            photo_folders / "val",
            str(run),
            steps=6,
            pause_at_step=4,
            log_every=1,
        )
    )
    assert metrics["step"] == 4 and metrics["param_max_diff"] == 0.0  # DDP kept both ranks identical
    assert (run / "step-0000004" / TRAIN_FILE).exists() and (run / "step-0000004" / "grid.png").exists()
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"loss_g", "loss_rec", "step_s", "images_per_s_per_worker"} <= set(log[0])
    assert [line["step"] for line in log if "val_psnr" in line] == [2, 4]
    assert not (run / "stage1.safetensors").exists()  # paused, not finished: stage 1 has not ended

    with pytest.raises(ValueError, match="--resume"):
        train_gan(_job(str(photo_folders / "train"), photo_folders / "val", str(run), steps=6))
    resumed = train_gan(
        _job(str(photo_folders / "train"), photo_folders / "val", str(run), steps=6, resume=True, log_every=1)
    )
    assert resumed["step"] == 6
    # The stage switch happens where the budget says: gan_start 0.8 of 6 steps, so step 5 (progress
    # 4/6 < 0.8 <= 5/6) is the first adversarial one; stage 1 ends with its export, the run with both.
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    stages = {line["step"]: line["stage"] for line in log}
    assert stages == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2}  # "step" counts steps done, so step 6 ran at 5/6
    assert all(("loss_d" in line) == (line["stage"] == 2) for line in log)
    assert 5 in [line["step"] for line in log if "val_psnr" in line]  # a checkpoint where stage 1 ended
    assert (run / "stage1.safetensors").exists() and (run / "stage2.safetensors").exists()
    assert resumed["shipped_stage"] in (1, 2) and (run / "model.safetensors").exists()

    # The same run from S3 data into an S3 run directory, uninterrupted: the resumed run must match it
    # bit for bit (same weights, optimizer moments, EMA), which only holds if resume restored every state.
    storage = s3_server.storage()
    bucket = s3_server.create_bucket()
    for path in sorted((photo_folders / "train").iterdir()):
        storage.write_bytes(f"s3://{bucket}/clean/{path.name}", path.read_bytes())
    s3_run = f"s3://{bucket}/runs/straight"
    options = StorageOptions(endpoint_url=s3_server.endpoint_url)
    straight = train_gan(
        _job(f"s3://{bucket}/clean", photo_folders / "val", s3_run, steps=6, storage=options, log_every=1)
    )
    assert straight["step"] == 6
    local_tensors, local_meta = load_checkpoint(run / "step-0000006" / TRAIN_FILE)
    remote = storage.read_bytes(f"{s3_run}/step-0000006/{TRAIN_FILE}")
    s3_tensors, s3_meta = decode_checkpoint(remote, s3_run)
    assert local_meta.step == s3_meta.step == 6
    assert local_meta.extra["opt_g"] == s3_meta.extra["opt_g"]
    assert all(np.array_equal(local_tensors[k].numpy(), s3_tensors[k].numpy()) for k in local_tensors)

    # The exported best EMA generator is an inference checkpoint the restore pipeline loads directly.
    restorer = Restorer(str(run / "model.safetensors"), pipeline=PipelineConfig(tile=32, overlap=8))
    photo = np.asarray(Image.open(io.BytesIO((photo_folders / "train" / "coffee.jpg").read_bytes())))
    restored, coverage = restorer.restore_pixels(photo)
    assert restored.shape == photo.shape and restored.dtype == np.uint8 and 0 <= coverage <= 1
    assert restorer.model_id.startswith("tiny-step")


def test_time_budget_ends_with_both_stages_exported(ray_local, photo_folders, tmp_path):
    run = tmp_path / "timed"
    job = _job(str(photo_folders / "train"), photo_folders / "val", str(run), steps=10**9)
    train = dataclasses.replace(job.config.train, time_budget_s=6.0, gan_start=0.5, checkpoint_every=10**6)
    metrics = train_gan(dataclasses.replace(job, config=job.config.replace(train=train), workers=1))
    # The step budget was never the limit: wall time was, and the run still ended with a checkpoint, each
    # stage's export and the shipped pick.
    assert 0 < metrics["step"] < 10**6 and metrics["shipped_stage"] in (1, 2)
    assert {p.name for p in run.glob("*.safetensors")} == {
        "stage1.safetensors",
        "stage2.safetensors",
        "model.safetensors",
    }
    assert (run / f"step-{metrics['step']:07d}" / TRAIN_FILE).exists()
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in log if "val_psnr" in line][-1] == metrics["step"]
    shipped = (run / "model.safetensors").read_bytes()
    assert shipped == (run / f"stage{metrics['shipped_stage']}.safetensors").read_bytes()


def test_ranks_shard_the_photos_disjointly_and_completely(ray_local, photo_folders):
    # Each worker keeps the rows whose index % world_size == rank: together the workers see every photo
    # once, whatever order Ray delivered the batches in.
    from pipeline.storage import Storage
    from pipeline.training.data import clean_dataset, worker_photos

    ds = clean_dataset(str(photo_folders / "train"), Storage()).materialize()
    shards = [worker_photos(ds, rank, 3) for rank in range(3)]
    sizes = [len(shard) for shard in shards]
    assert sizes == [2, 1, 1]  # 4 photos over 3 workers, in manifest order
    seen = [bytes(photo[:4, :4].tobytes()) for shard in shards for photo in shard]
    assert len(set(seen)) == len(PHOTOS)  # every photo once
    assert all(photo.dtype == np.uint8 and photo.shape[2] == 3 for shard in shards for photo in shard)


def test_patina_train_cli_trains_refuses_to_overwrite_and_resumes(ray_local, photo_folders, tmp_path):
    # The command as a user types it (typer's runner, in this process's Ray): a run, the same output again
    # without --resume (one line, nothing touched), then --resume with a larger budget goes on from step 2.
    from typer.testing import CliRunner

    from flows.cli import app

    run = tmp_path / "cli-run"
    args = ["train", "--data", str(photo_folders / "train"), "--val", str(photo_folders / "val")]
    args += ["--output", str(run), "--preset", "tiny", "--batch-size", "2", "--crop", "32"]
    args += ["--checkpoint-every", "2", "--val-limit", "1"]
    runner = CliRunner()

    first = runner.invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    model = (run / "model.safetensors").read_bytes()
    again = runner.invoke(app, [*args, "--steps", "2"])
    assert again.exit_code != 0 and "already holds a run; pass --resume" in again.output
    assert (run / "model.safetensors").read_bytes() == model
    resumed = runner.invoke(app, [*args, "--steps", "4", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in log if "val_psnr" in line] == [2, 4]  # continued, not restarted
    # A run whose preset has changed since it started (say, a new head) is refused before anything is written.
    config = (run / "config.json").read_text()
    changed = json.loads(config)
    changed["generator"]["tone_head"] = 0
    (run / "config.json").write_text(json.dumps(changed))
    other = runner.invoke(app, [*args, "--steps", "6", "--resume"])
    assert other.exit_code != 0 and "was started with another restoration generator" in other.output
    assert json.loads((run / "config.json").read_text()) == changed


def test_the_same_trainer_trains_the_retro_family_and_resumes_it(ray_local, photo_folders, tmp_path):
    # `patina train --family retro`: the driver's budget, checkpoints, resume and exports, with the retro
    # GAN, its rendered samples and its validation (look transfer where the truth is known).
    from typer.testing import CliRunner

    from flows.cli import app
    from model.checkpoints import load_generator
    from model.retro.generator import RetroModel

    run = tmp_path / "retro-run"
    args = ["train", "--family", "retro", "--preset", "tiny", "--data", str(photo_folders / "train")]
    args += ["--val", str(photo_folders / "train"), "--output", str(run), "--checkpoint-every", "2"]
    args += ["--val-limit", "2"]
    runner = CliRunner()
    first = runner.invoke(app, [*args, "--steps", "2"])
    assert first.exit_code == 0, first.output
    resumed = runner.invoke(app, [*args, "--steps", "4", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    scored = [line for line in log if "val_psnr" in line]
    assert [line["step"] for line in scored] == [2, 4]  # continued, not restarted
    assert {"val_param_error", "val_sensitivity_accuracy", "loss_params"} <= set(scored[-1])
    model, meta, _ = load_generator(run / "model.safetensors")
    assert isinstance(model, RetroModel) and meta.family == "retro" and meta.step == 4
    mixture = runner.invoke(app, [*args, "--steps", "2", "--mixture", "light"])
    assert mixture.exit_code != 0 and "--mixture and --real are restoration options" in mixture.output


@pytest.mark.timeout(600)
def test_a_killed_training_worker_restarts_from_the_last_checkpoint(ray_local, photo_folders, tmp_path):
    # SIGKILL the Ray Train worker once a checkpoint exists: Ray Train starts a new worker, which resumes
    # from the latest checkpoint (the log it carries keeps the first attempt's lines bit for bit; a restart
    # from scratch would re-time them) and the run ends at its full step count.
    import signal
    import subprocess
    import threading
    import time

    run = tmp_path / "killed"
    job = _job(str(photo_folders / "train"), photo_folders / "val", str(run), steps=120)
    train = dataclasses.replace(job.config.train, checkpoint_every=20, crop=64, batch_size=4)
    job = dataclasses.replace(job, config=job.config.replace(train=train), workers=1, max_failures=2)
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.update(metrics=train_gan(job)), daemon=True)
    thread.start()
    # Once step 40's checkpoint is on disk, step 20's has been reported to Ray Train for sure.
    deadline = time.monotonic() + 240
    while not (run / "step-0000040" / TRAIN_FILE).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    early = [line for line in (run / "log.jsonl").read_text().splitlines() if json.loads(line)["step"] <= 20]
    workers = subprocess.run(["pgrep", "-f", "RayTrainWorker"], capture_output=True, text=True).stdout.split()
    assert workers, "no Ray Train worker process found to kill"
    for pid in workers:
        os.kill(int(pid), signal.SIGKILL)
    thread.join(timeout=420)

    assert outcome.get("metrics", {}).get("step") == 120, outcome
    after = (run / "log.jsonl").read_text().splitlines()
    assert after[: len(early)] == early  # resumed from a checkpoint, not retrained from step 1
    steps = [json.loads(line)["step"] for line in after]
    assert steps == sorted(steps) and steps[-1] == 120


def test_the_resume_fallback_takes_this_runs_newest_whole_checkpoint(tmp_path):
    # Only step-* directly under the run (never a nested run's), newest first by step number, and a partial
    # file (a worker killed while writing it) is passed over for the one before.
    import torch

    from model.checkpoints import CheckpointMeta, save_checkpoint
    from pipeline.storage import Storage
    from pipeline.training.driver import _latest_run_checkpoint

    def write(path: Path, step: int) -> None:
        meta = CheckpointMeta(config=tiny(), kind="training", step=step, extra={})
        save_checkpoint(path, {"w": torch.zeros(2)}, meta)

    run = tmp_path / "run"
    write(run / "step-0000002" / TRAIN_FILE, 2)
    write(run / "step-0000008" / TRAIN_FILE, 8)
    (run / "step-0000010").mkdir()
    (run / "step-0000010" / TRAIN_FILE).write_bytes((run / "step-0000008" / TRAIN_FILE).read_bytes()[:50])
    write(run / "older-experiment" / "step-0000099" / TRAIN_FILE, 99)

    _, meta = _latest_run_checkpoint(Storage(), str(run))
    assert meta.step == 8
    assert _latest_run_checkpoint(Storage(), str(tmp_path / "empty")) is None
