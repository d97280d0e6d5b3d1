"""Saving and restoring the whole training state resumes training exactly."""

import torch

from model.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from model.restoration.config import tiny
from model.restoration.gan import Batch, RestorationGAN


def _batch() -> Batch:
    g = torch.Generator().manual_seed(0)
    return Batch(
        torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
        torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
        (torch.rand(2, 1, 32, 32, generator=g) > 0.9).float(),
    )


def test_resume_from_checkpoint_continues_identically(tmp_path):
    torch.manual_seed(0)
    original, batch = RestorationGAN(tiny()), _batch()
    for _ in range(3):
        original.train_step(batch)
    tensors, extras = original.state_tensors()
    path = tmp_path / "train.safetensors"
    save_checkpoint(path, tensors, CheckpointMeta(config=tiny(), kind="training", step=3, extra=extras))

    loaded_tensors, meta = load_checkpoint(path)
    resumed = RestorationGAN(meta.config)
    resumed.load_state_tensors(loaded_tensors, meta.extra)
    assert resumed.step == 3
    assert resumed.opt_g.param_groups[0]["lr"] == original.opt_g.param_groups[0]["lr"] > 0
    # The same next steps, bit for bit: weights, both optimizers' moments and the EMA all came back.
    for _ in range(2):
        assert resumed.train_step(batch) == original.train_step(batch)
    after_original, _ = original.state_tensors()
    after_resumed, _ = resumed.state_tensors()
    assert all(torch.equal(after_original[k], after_resumed[k]) for k in after_original)


def test_snapshot_is_a_copy():
    gan, batch = RestorationGAN(tiny()), _batch()
    gan.train_step(batch)
    before, _ = gan.state_tensors()
    frozen = {k: v.clone() for k, v in before.items()}
    gan.train_step(batch)
    assert all(torch.equal(before[k], frozen[k]) for k in before)
