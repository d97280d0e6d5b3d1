import json
import struct

import pytest
import torch

from model.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    load_checkpoint,
    load_generator,
    save_checkpoint,
    save_generator,
)
from model.restoration.config import GeneratorConfig, tiny
from model.restoration.generator import Generator


def _trained_generator() -> Generator:
    generator = Generator(tiny().generator)
    with torch.no_grad():
        for p in generator.parameters():
            p.normal_(std=0.05)  # non-trivial weights so a bad round trip shows
    return generator.eval()


def test_round_trip_bit_identical(tmp_path):
    generator = _trained_generator()
    path = tmp_path / "g.safetensors"
    save_generator(path, generator, tiny(), step=123, data="astronaut", metrics={"psnr": 27.5})
    loaded, meta, model_id = load_generator(path)
    assert meta.family == "restoration" and model_id.startswith("tiny-step123-")
    assert meta.step == 123 and meta.data == "astronaut" and meta.metrics == {"psnr": 27.5}
    assert meta.config == tiny() and meta.version
    x = torch.rand(1, 3, 97, 131) * 2 - 1
    with torch.no_grad():
        a, a_mask = generator(x)
        b, b_mask = loaded(x)
    assert torch.equal(a, b) and torch.equal(a_mask, b_mask)
    assert not list(tmp_path.glob(".*"))  # atomic save left no temp file


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    path = tmp_path / "g.safetensors"
    save_generator(path, _trained_generator(), tiny())
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    meta = json.loads(json.loads(data[8 : 8 + length])["__metadata__"]["patina"])
    assert meta["format"] == "patina-checkpoint" and meta["config"]["preset"] == "tiny"


def _assert_one_line_error(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load_generator(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated(tmp_path):
    path = tmp_path / "g.safetensors"
    save_generator(path, _trained_generator(), tiny())
    path.write_bytes(path.read_bytes()[:-100])
    _assert_one_line_error(path, "corrupt or truncated")
    path.write_bytes(b"\x01\x02")
    _assert_one_line_error(path, "truncated")


def test_corrupt(tmp_path):
    path = tmp_path / "g.safetensors"
    path.write_bytes(struct.pack("<Q", 20) + b"this is not json!!!!" + b"\x00" * 64)
    _assert_one_line_error(path, "corrupt")
    path.write_bytes(b"PK\x03\x04 a zip or a pickle, not safetensors" * 10)
    _assert_one_line_error(path, "corrupt")


def test_mismatched_weights_and_config(tmp_path):
    # Weights of one architecture saved under the config of another.
    other = tiny().replace(generator=GeneratorConfig(widths=(16, 32), blocks=(1,)))
    path = tmp_path / "g.safetensors"
    save_checkpoint(path, _trained_generator().state_dict(), CheckpointMeta(config=other))
    _assert_one_line_error(path, "do not match")


def test_missing_metadata_and_missing_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, path)
    _assert_one_line_error(path, "without patina metadata")
    _assert_one_line_error(tmp_path / "absent.safetensors", "not found")


def test_training_checkpoint_is_not_a_generator(tmp_path):
    path = tmp_path / "t.safetensors"
    save_checkpoint(path, {"x": torch.zeros(1)}, CheckpointMeta(config=tiny(), kind="training"))
    _assert_one_line_error(path, "training checkpoint")
    tensors, meta = load_checkpoint(path)
    assert meta.kind == "training" and torch.equal(tensors["x"], torch.zeros(1))


def _with_metadata(path, edit) -> None:
    """Rewrite a saved checkpoint's patina metadata through ``edit(dict)``."""
    from safetensors.torch import load_file, save_file

    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    meta = json.loads(json.loads(data[8 : 8 + length])["__metadata__"]["patina"])
    edit(meta)
    save_file(load_file(path), path, metadata={"patina": json.dumps(meta)})


def test_checkpoint_of_the_retired_generator_is_named(tmp_path):
    # What patina <= 0.1 wrote for its FiLM U-Net: format 1, no family, a generator config with
    # base_channels / channel_mults.
    path = tmp_path / "patina-base.safetensors"
    save_generator(path, _trained_generator(), tiny())

    def old(meta):
        meta.update(format_version=1, config={**meta["config"], "preset": "base"})
        del meta["family"]
        meta["config"]["generator"] = {
            "base_channels": 32,
            "channel_mults": [1, 2, 4, 4],
            "num_res_blocks": 2,
        }

    _with_metadata(path, old)
    _assert_one_line_error(path, "retired full-resolution FiLM U-Net \\(preset 'base'")


def test_unknown_family_is_refused_and_format_1_means_restoration(tmp_path):
    path = tmp_path / "g.safetensors"
    save_generator(path, _trained_generator(), tiny())
    _with_metadata(path, lambda meta: meta.update(family="colourise"))
    _assert_one_line_error(path, "unknown model family 'colourise'")

    def format_1(meta):
        meta.update(format_version=1)
        del meta["family"]

    _with_metadata(path, format_1)
    assert load_generator(path)[1].family == "restoration"


def test_load_generator_reads_through_storage_from_s3(s3_server, bucket, tmp_path):
    path = tmp_path / "g.safetensors"
    save_generator(path, _trained_generator(), tiny(), step=7)
    storage = s3_server.storage()
    storage.write_file(f"s3://{bucket}/models/g.safetensors", str(path))
    generator, meta, model_id = load_generator(f"s3://{bucket}/models/g.safetensors", storage)
    assert meta.step == 7 and model_id == load_generator(path)[2] and not generator.training


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_weights_that_are_not_finite_are_refused_at_load(tmp_path, bad):
    # A diverged run's export turns every photo black: it must be refused before any photo, not recorded ok.
    generator = _trained_generator()
    with torch.no_grad():
        next(generator.parameters()).view(-1)[0] = bad
    path = tmp_path / "g.safetensors"
    save_generator(path, generator, tiny())
    _assert_one_line_error(path, "NaN or inf")


def test_a_config_no_network_can_have_is_refused_without_building_it(tmp_path):
    # Negative or absurd widths in the metadata: one line, and no attempt to allocate the network.
    weights = _trained_generator().state_dict()
    for widths in ((-8, 16), (1 << 20, 1 << 21)):
        path = tmp_path / f"w{widths[0]}.safetensors"
        other = tiny().replace(generator=GeneratorConfig(widths=widths, blocks=(1,)))
        save_checkpoint(path, weights, CheckpointMeta(config=other))
        _assert_one_line_error(path, "describes no valid network|do not match")
