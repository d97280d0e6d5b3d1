"""A run's model is read once at planning: its id (what every row records) and its description (what
results.parquet's metadata carries) come from one read of the checkpoint and one of the reference."""

import pytest

from model.checkpoints import DEFAULT_CHECKPOINT, load_generator
from pipeline.batch.identity import identify_model
from pipeline.batch.stylizer import ReferenceStylizer, era_model_id, estimate_look, load_retro
from pipeline.storage import Storage


class CountingStorage(Storage):
    """Local storage that remembers every object it reads."""

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    def read_bytes(self, uri, *args, **kwargs):
        self.reads.append(str(uri))
        return super().read_bytes(uri, *args, **kwargs)


def test_a_reference_run_reads_the_model_and_the_reference_once(tmp_path, photo, tiny_retro_checkpoint):
    reference = str(tmp_path / "old.png")
    photo.rotate(45).save(reference)
    storage = CountingStorage()
    model_id, described = identify_model(str(tiny_retro_checkpoint), storage, reference)
    assert sorted(storage.reads) == sorted([str(tiny_retro_checkpoint), reference])
    # The same id and the same look as the actors and `patina retro estimate` read.
    assert model_id == ReferenceStylizer(str(tiny_retro_checkpoint), reference, device="cpu").model_id
    style, digest = estimate_look(load_retro(str(tiny_retro_checkpoint), Storage())[0], reference, Storage())
    assert described["params"] == style.to_params().to_dict() and described["reference_sha256"] == digest
    assert described["family"] == "retro" and described["model_id"] == model_id


def test_restoration_and_era_models_and_the_wrong_pairings():
    storage = CountingStorage()
    model_id, described = identify_model(str(DEFAULT_CHECKPOINT), storage)
    assert storage.reads == [str(DEFAULT_CHECKPOINT)] and model_id == load_generator(DEFAULT_CHECKPOINT)[2]
    assert described == {"family": "restoration", "model": str(DEFAULT_CHECKPOINT), "model_id": model_id}
    era_id, era_described = identify_model("era:1900s-sepia", storage)
    assert era_id == era_model_id("1900s-sepia") and era_described["era"] == "1900s-sepia"
    with pytest.raises(ValueError, match="takes no reference; use a retro model"):
        identify_model(str(DEFAULT_CHECKPOINT), storage, "old.jpg")
    with pytest.raises(ValueError, match="an era preset takes no reference"):
        identify_model("era:1900s-sepia", storage, "old.jpg")


def test_a_retro_model_without_a_reference_is_refused(tiny_retro_checkpoint):
    with pytest.raises(ValueError, match="gives photos the look of a reference photo"):
        identify_model(str(tiny_retro_checkpoint), Storage())


def test_a_checkpoint_whose_weights_are_broken_stops_the_run_before_work(tmp_path):
    # The header alone is not the model: weights that are NaN, or do not fit their config, are one error
    # when the run is planned, not a failed (or a black "ok") row per photo.
    import torch

    from model.checkpoints import CheckpointError, load_generator, save_generator
    from model.restoration.config import tiny
    from model.restoration.generator import Generator

    generator = Generator(tiny().generator)
    with torch.no_grad():
        next(generator.parameters()).view(-1)[0] = float("nan")
    path = tmp_path / "diverged.safetensors"
    save_generator(path, generator, tiny())
    with pytest.raises(CheckpointError, match="NaN or inf"):
        identify_model(str(path), Storage())
    with pytest.raises(CheckpointError, match="NaN or inf"):
        load_generator(path)
