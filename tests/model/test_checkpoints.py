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
from model.config import GeneratorConfig, tiny
from model.generator import Generator


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
    loaded, meta = load_generator(path)
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
    other = tiny().replace(generator=GeneratorConfig(base_channels=16, channel_mults=(1, 2)))
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
