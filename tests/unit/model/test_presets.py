"""Presets are sized by compute (docs/MODEL.md): the bounds the issue set, counted by torch's flop counter."""

import pytest

from model.restoration.config import preset
from model.restoration.cost import describe

# preset -> (max generator GFLOPs per megapixel, min, max parameters)
BOUNDS = {
    "tiny": (25.0, 0, 200_000),
    "small": (100.0, 2_000_000, 5_000_000),  # trainable on the 2-core CPU box
    "large": (550.0, 10_000_000, 40_000_000),  # NAFNet-w32 class, for GPUs
}


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_preset_compute_and_size(name):
    generator = describe(preset(name))[0]
    max_gflops, low, high = BOUNDS[name]
    assert generator.name == "generator"
    assert generator.gflops_per_megapixel <= max_gflops
    assert low <= generator.parameters <= high
    if name == "large":
        assert generator.gflops_per_megapixel >= 400  # really the GPU size, not a relabelled small
    if name == "small":  # <= 20 MB of fp32 weights: the shipped default must stay small
        assert generator.parameters * 4 <= 20e6
