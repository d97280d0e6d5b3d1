"""One builder for archive jobs (``archive_job``): the command line and the flows get the same job for the
same options, and every default comes from the config classes, never from a second literal."""

import inspect

import pytest

from flows.restore import restore_archive_flow
from flows.stylize import stylize_archive_flow
from model.files import DEFAULT_CHECKPOINT, DEFAULT_RETRO_CHECKPOINT
from pipeline.batch.config import PipelineConfig, RestoreJob, archive_job, stylize_job
from pipeline.cli import archive
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
