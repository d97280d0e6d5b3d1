"""A resumed --time-budget run goes on from the checkpoint's spent time and stage: it never restarts its
budget (which would retrain stage 1 and re-warm the learning rate) nor forgets a finished stage."""

from model.checkpoints import CheckpointMeta, load_checkpoint, save_checkpoint
from model.config import TrainConfig
from model.gan import stage_of
from model.restoration.config import tiny
from pipeline.training.driver import _RunState


def test_a_resumed_time_budget_continues_from_its_checkpoint(tmp_path):
    train = TrainConfig(steps=10**9, time_budget_s=100.0, gan_start=0.5)
    state = _RunState(best_psnr=21.5, log=[{"step": 1}], stages={"1": {"val_psnr": 21.5, "step": 40.0}})
    budget = state.budget(train)
    for _ in range(60):  # 60 steps of one second: past the stage switch at 50 s
        budget.spend(1.0)
    assert budget.progress(60) == 0.6 and stage_of(budget.progress(60), train.gan_start) == 2
    # Saved and read back the way the trainer does (the checkpoint's JSON metadata), by a new process.
    path = tmp_path / "train.safetensors"
    save_checkpoint(
        path, {}, CheckpointMeta(config=tiny(), kind="training", step=60, extra=state.to_extra(budget))
    )
    resumed = _RunState.from_extra(load_checkpoint(path)[1].extra)
    again = resumed.budget(train)
    assert again.progress(60) == 0.6 and stage_of(again.progress(60), train.gan_start) == 2
    assert resumed.stages == state.stages and resumed.best_psnr == 21.5 and resumed.log == [{"step": 1}]
    again.spend(40.0)
    assert again.progress(100) == 1.0  # the run ends at its budget, not 100 s after the resume
