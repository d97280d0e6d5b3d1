"""Restore tensors and PIL images with a generator, without Ray (the pipeline's actors call the same code)."""

from __future__ import annotations

import torch
from PIL import Image

from model.degradation.engine import image_to_tensor, tensor_to_image
from model.restoration.generator import Generator


@torch.inference_mode()
def restore_tensor(
    generator: Generator,
    degraded: torch.Tensor,
    autocast_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """degraded (B, 3, H, W) float in [0, 1] on the generator's device -> (restored (B, 3, H, W) in [0, 1],
    defect probability (B, 1, H, W) in [0, 1]). ``autocast_dtype=torch.bfloat16`` on GPU for speed."""
    device_type = degraded.device.type
    with torch.autocast(
        device_type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
    ):
        x = (degraded * 2 - 1).contiguous(memory_format=torch.channels_last)
        restored, mask_logits = generator(x)
    restored = ((restored.float() + 1) / 2).clamp_(0, 1)
    return restored, torch.sigmoid(mask_logits.float())


def restore_image(generator: Generator, image: Image.Image) -> tuple[Image.Image, Image.Image]:
    """Restore one PIL image of any mode. Returns (restored, defect mask "L" 0-255).

    Grayscale stays grayscale, alpha is carried over untouched, everything else comes back RGB.
    """
    device = next(generator.parameters()).device
    degraded = image_to_tensor(image).unsqueeze(0).to(device)  # (1, 3, H, W)
    restored, mask = restore_tensor(generator, degraded)
    out = tensor_to_image(restored[0].cpu())
    if image.mode in ("L", "LA", "I", "I;16", "1"):
        out = out.convert("L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        out = out.convert("LA" if out.mode == "L" else "RGBA")
        out.putalpha(alpha)
    return out, tensor_to_image(mask[0].cpu())
