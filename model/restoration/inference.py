"""Restore tensors and PIL images with a generator, without Ray (the pipeline's actors call the same code)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image

from model.context import tone_context
from model.degradation.engine import image_to_tensor, like_source, tensor_to_image
from model.restoration.generator import Generator


def default_autocast(device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it natively (CUDA; CPUs with AVX-512 BF16 or AMX), else full precision.
    On the 2-core AVX-512 BF16 box bf16 trains the small generator 3.3x faster than fp32 and restores 512 px
    tiles 3.1x faster, with outputs within 2 grey levels of fp32's (PERFORMANCE.md)."""
    if device.type == "cuda":
        return torch.bfloat16
    # Not torch.ops.mkldnn._is_mkldnn_bf16_supported(): that is true on any AVX-512 CPU (Skylake, Cascade
    # Lake), where oneDNN emulates bf16, slower than fp32.
    if device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()):
        return torch.bfloat16
    return None


RestoreBatch = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@torch.inference_mode()
def restore_tensor(
    generator: Generator,
    degraded: torch.Tensor,
    autocast_dtype: torch.dtype | None = None,
    context: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """degraded (B, 3, H, W) float in [0, 1] on the generator's device -> (restored (B, 3, H, W) in [0, 1],
    defect probability (B, 1, H, W) in [0, 1]). ``autocast_dtype``: ``default_autocast(device)`` for speed.
    ``context``: the whole image's ``image_context`` when ``degraded`` holds tiles of it."""
    device_type = degraded.device.type
    with torch.autocast(
        device_type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
    ):
        x = (degraded * 2 - 1).contiguous(memory_format=torch.channels_last)
        restored, mask_logits = generator(x, context)
    restored = ((restored.float() + 1) / 2).clamp_(0, 1)
    return restored, torch.sigmoid(mask_logits.float())


@torch.inference_mode()
def image_context(generator: Generator, image: torch.Tensor) -> torch.Tensor | None:
    """The tone context of whole (B, 3, H, W) images in [0, 1]; None for a generator without a tone head."""
    return tone_context(image, scale=2.0, shift=-1.0) if generator.tone is not None else None


def tile_restorer(
    generator: Generator, image: torch.Tensor, autocast_dtype: torch.dtype | None = None
) -> RestoreBatch:
    """``restore_batch`` for ``pipeline.batch.tiling.restore_tiled`` on tiles of ``image`` (3, H, W) in
    [0, 1]: every tile is restored with the whole image's tone context, so tiled equals untiled (a tile's own
    statistics would give each tile its own colour correction: seams)."""
    context = image_context(generator, image[None])

    def restore_batch(tiles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch_context = None if context is None else context.expand(len(tiles), -1)
        return restore_tensor(generator, tiles, autocast_dtype, batch_context)

    return restore_batch


def restore_image(generator: Generator, image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Restore one PIL image of any mode. Returns (restored, defect mask "L" 0-255).

    Grayscale stays grayscale, alpha is carried over untouched, everything else comes back RGB.
    """
    device = next(generator.parameters()).device
    degraded = image_to_tensor(image).unsqueeze(0).to(device)  # (1, 3, H, W)
    restored, mask = restore_tensor(generator, degraded)
    return like_source(tensor_to_image(restored[0].cpu()), image), tensor_to_image(mask[0].cpu())
