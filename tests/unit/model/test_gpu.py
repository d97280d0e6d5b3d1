"""What only runs on a GPU: the restorer's bf16 autocast with channels_last on CUDA, and the degradation
engine on CUDA. Marked ``gpu``: skipped (and reported) without a CUDA device, run by `make test` where one is
(benchmarks/gpu.sh's machine included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model.checkpoints import DEFAULT_CHECKPOINT
from model.degradation.engine import apply_plan, image_to_tensor, sample_plan

pytestmark = pytest.mark.gpu


def test_cuda_bf16_restoration_matches_cpu_fp32(photo):
    # Same shipped weights, same photo: CUDA (bf16 autocast, channels_last) within a grey level or so of
    # CPU fp32 on average, tiles and all.
    from pipeline.batch.config import PipelineConfig
    from pipeline.batch.restorer import Restorer

    pixels = np.asarray(photo.resize((300, 220)).convert("RGB"))
    gpu = Restorer(str(DEFAULT_CHECKPOINT), device="cuda", pipeline=PipelineConfig(tile=128, overlap=16))
    cpu = Restorer(str(DEFAULT_CHECKPOINT), device="cpu", pipeline=PipelineConfig(tile=128, overlap=16))
    cpu.autocast = None  # the fp32 reference (CPUs with AVX-512 BF16 would otherwise run bf16 too)
    assert gpu.autocast is torch.bfloat16
    conv = next(
        m for m in gpu.generator.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)
    )
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    on_gpu, coverage_gpu = gpu.restore_pixels(pixels)
    on_cpu, coverage_cpu = cpu.restore_pixels(pixels)
    difference = np.abs(on_gpu.astype(np.int16) - on_cpu.astype(np.int16))
    assert difference.mean() < 1.0 and np.percentile(difference, 99.9) <= 8
    assert abs(coverage_gpu - coverage_cpu) < 0.01


def test_degradation_engine_runs_on_cuda_like_on_cpu(photo):
    # The engine is deterministic per device; on CUDA it must produce the same kind of damage: same shapes,
    # same defect mask coverage within a few percent, similar PSNR loss.
    clean = image_to_tensor(photo.resize((256, 192)))
    plan = sample_plan(np.random.default_rng(3), 192, 256, "medium")
    degraded_cpu, target_cpu, mask_cpu = apply_plan(clean, plan)
    degraded_gpu, target_gpu, mask_gpu = apply_plan(clean.cuda(), plan)
    assert degraded_gpu.is_cuda and degraded_gpu.shape == degraded_cpu.shape
    assert abs(mask_gpu.mean().item() - mask_cpu.mean().item()) < 0.05

    def psnr(a, b):
        return -10 * torch.log10(((a - b) ** 2).mean()).item()

    assert abs(psnr(degraded_gpu.cpu(), target_gpu.cpu()) - psnr(degraded_cpu, target_cpu)) < 3
