"""CPU restoration runs in bf16 autocast where the CPU has native bf16 (AVX-512 BF16 or AMX): 3.1x the fp32
rate on 512 px tiles on the 2-core box (docs/PERFORMANCE.md). It must stay close to fp32, as on the 210
validation copies (mean 0.056 grey levels apart, at most 2); the bounds here leave room for other CPUs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.checkpoints import DEFAULT_CHECKPOINT
from model.restoration.inference import default_autocast
from pipeline.batch.config import PipelineConfig
from pipeline.batch.restorer import Restorer


@pytest.mark.skipif(
    default_autocast(torch.device("cpu")) is None, reason="this CPU has no native bf16: it restores in fp32"
)
def test_cpu_bf16_restoration_stays_within_two_grey_levels_of_fp32(photo):
    pixels = np.asarray(photo.resize((300, 220)).convert("RGB"))
    fast = Restorer(str(DEFAULT_CHECKPOINT), device="cpu", pipeline=PipelineConfig(tile=128, overlap=16))
    exact = Restorer(str(DEFAULT_CHECKPOINT), device="cpu", pipeline=PipelineConfig(tile=128, overlap=16))
    exact.autocast = None
    assert fast.autocast is torch.bfloat16
    (bf16, coverage_bf16), (fp32, coverage_fp32) = fast.restore_pixels(pixels), exact.restore_pixels(pixels)
    difference = np.abs(bf16.astype(np.int16) - fp32.astype(np.int16))
    assert difference.mean() < 0.25 and difference.max() <= 3, (difference.mean(), difference.max())
    assert abs(coverage_bf16 - coverage_fp32) < 0.01
    assert np.abs(fp32.astype(np.int16) - pixels).mean() > 0.1  # and the model did something to compare
