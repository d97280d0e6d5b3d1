"""One builder for archive jobs (``archive_job``): the command line and the flows get the same job for the
same options, and every default comes from the config classes, never from a second literal."""

import inspect

import pytest

from flows.cli import archive
from flows.restore import restore_archive_flow
from flows.stylize import stylize_archive_flow
from model.files import DEFAULT_CHECKPOINT, DEFAULT_RETRO_CHECKPOINT
from pipeline.batch.config import PipelineConfig, RestoreJob, archive_job, stylize_job
from pipeline.storage import StorageOptions


def test_unset_options_are_the_config_defaults():
    job = archive_job("m.parquet", "out", batch_size=None, tile=None, limit=None, endpoint_url=None)
    assert job == RestoreJob("m.parquet", "out", model=str(DEFAULT_CHECKPOINT))
    assert archive_job("m", "o", reference="old.jpg").model == str(DEFAULT_RETRO_CHECKPOINT)
    assert archive_job("m", "o", era="1900s-sepia").model == "era:1900s-sepia"
    given = archive_job(
        "m", "o", tile=256, overlap=16, limit=3, endpoint_url="http://s3", outage_patience_s=5
    )
    assert given.pipeline == PipelineConfig(tile=256, overlap=16) and given.limit == 3
    assert given.storage == StorageOptions(endpoint_url="http://s3", outage_patience_s=5)


def test_contradictions_and_unknown_options_are_refused():
    with pytest.raises(ValueError, match="exactly one of --era NAME or --reference"):
        archive_job("m", "o", era="1900s-sepia", reference="old.jpg")
    with pytest.raises(ValueError, match="an era needs none"):
        archive_job("m", "o", era="1900s-sepia", model="x.safetensors")
    with pytest.raises(TypeError, match="unknown options \\['tiel'\\]"):
        archive_job("m", "o", tiel=3)
    with pytest.raises(ValueError, match="exactly one of --era NAME or --reference"):
        stylize_job("m", "o", model="retro.safetensors")  # a stylize run without a look would restore
    assert stylize_job("m", "o", era="1900s-sepia") == archive_job("m", "o", era="1900s-sepia")


@pytest.mark.parametrize(
    "command", [archive.restore, archive.stylize, restore_archive_flow.fn, stylize_archive_flow.fn]
)
def test_every_entry_point_defaults_to_the_config(command):
    defaults = {**vars(PipelineConfig()), "flush_rows": RestoreJob.flush_rows}
    defaults["outage_patience"] = StorageOptions.outage_patience_s
    for name, parameter in inspect.signature(command).parameters.items():
        default = getattr(parameter.default, "default", parameter.default)  # typer.Option(...) or a value
        if name in defaults:
            assert default == defaults[name], (command.__name__, name)


def test_one_train_job_builder_for_the_command_line_and_the_flow():
    from flows.cli import models
    from flows.train import train_gan_flow
    from model.restoration.config import preset
    from pipeline.training.job import TrainJob, train_job

    job = train_job("photos", "val", "run", steps=None, workers=None, time_budget=None, endpoint_url=None)
    assert job == TrainJob("photos", "val", "run", config=preset("small"))
    given = train_job(
        "p", "v", "r", preset="tiny", time_budget="2m", steps=5, workers=2, endpoint_url="http://s3"
    )
    assert given.config.train.time_budget_s == 120 and given.config.train.steps == 5 and given.workers == 2
    assert given.config.generator == preset("tiny").generator and given.storage.endpoint_url == "http://s3"
    assert train_job("p", "v", "r", family="retro", preset="tiny").config.preset == "tiny"
    with pytest.raises(ValueError, match="unknown model family 'colour'"):
        train_job("p", "v", "r", family="colour")
    with pytest.raises(ValueError, match="--mixture and --real are restoration options"):
        train_job("p", "v", "r", family="retro", mixture="light")
    with pytest.raises(ValueError, match="--mixture and --real are restoration options"):
        train_job("p", "v", "r", family="retro", real="old-photos")
    with pytest.raises(ValueError, match="--real-fraction must be in"):
        train_job("p", "v", "r", real="old-photos", real_fraction=1.5)
    real = train_job("p", "v", "r", real="old-photos", real_fraction=0.4, mixture="light")
    assert real.real == "old-photos" and real.config.degradation.real_fraction == 0.4
    assert real.config.degradation.mixture == "light"
    with pytest.raises(ValueError, match="cannot read time budget"):
        train_job("p", "v", "r", time_budget="soon")
    with pytest.raises(TypeError, match="unknown options \\['stpes'\\]"):
        train_job("p", "v", "r", stpes=3)
    for command in (models.train, train_gan_flow.fn):  # shared options default to the job's own defaults
        for name, parameter in inspect.signature(command).parameters.items():
            default = getattr(parameter.default, "default", parameter.default)
            if name in ("workers", "gpu", "resume"):
                assert default == getattr(TrainJob, name), (command.__name__, name)


@pytest.mark.parametrize(
    ("command", "flow"),
    [(archive.restore, restore_archive_flow.fn), (archive.stylize, stylize_archive_flow.fn)],
)
def test_the_command_and_its_flow_take_the_same_job_options(command, flow):
    # The flow had drifted (no tile, overlap, flush_rows or outage patience): what a user can set on the
    # command line, a scheduled run can set too. Only where each runs differs.
    local_only = {"ctx", "dashboard", "job_json"}  # a terminal's run: a dashboard, a Ray Job's --job
    flow_only = {"ray_job_server"}  # a flow may submit the run as a Ray Job
    assert (
        set(inspect.signature(command).parameters) - local_only
        == set(inspect.signature(flow).parameters) - flow_only
    )


def test_negative_or_non_numeric_limits_are_refused_before_work():
    for options, match in (
        ({"limit": -1}, "--limit must be"),
        ({"flush_rows": 0}, "--flush-rows must be"),
        ({"flush_rows": -5}, "--flush-rows must be"),
    ):
        with pytest.raises(ValueError, match=match):
            archive_job("m", "o", **options)
    job = archive_job("m", "o", limit=0)
    text = job.to_json().replace('"limit": 0', '"limit": "5"')
    with pytest.raises(ValueError, match="not a restore job: --limit must be a whole number"):
        type(job).from_json(text)
