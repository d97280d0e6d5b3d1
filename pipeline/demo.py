"""`make demo`: degrade sample photos that ship with scikit-image, restore them, write a viewable page.

The samples are public domain / CC0 (astronaut: NASA; camera, coffee, chelsea: CC0; rocket: SpaceX,
public domain), read from scikit-image's installed data, so nothing is downloaded or copied into the repo.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
import torch
from PIL import Image

from model.checkpoints import DEFAULT_CHECKPOINT, load_generator
from model.config import base
from model.degradations import apply_plan, image_to_tensor, sample_plan, tensor_to_image
from model.generator import Generator
from model.inference import restore_image
from model.metrics import mask_iou, psnr, ssim

SAMPLES = ("astronaut", "camera", "chelsea", "coffee", "rocket")
SEVERITIES = ("medium", "heavy")


@dataclass(frozen=True)
class DemoRow:
    name: str
    severity: str
    psnr_degraded: float
    psnr_restored: float
    ssim_degraded: float
    ssim_restored: float
    mask_iou: float


def load_default_generator() -> tuple[Generator, str]:
    """The shipped default model, or an untrained `base` generator (which returns its input) if none ships."""
    if DEFAULT_CHECKPOINT.exists():
        generator, meta = load_generator(DEFAULT_CHECKPOINT)
        return generator, f"{DEFAULT_CHECKPOINT.name} (step {meta.step})"
    torch.manual_seed(0)
    return Generator(base().generator).eval(), "untrained base generator (no trained default model ships yet)"


def run_demo(out_dir: Path, seed: int = 0) -> tuple[list[DemoRow], str]:
    """Write clean/, degraded/, restored/ and masks/ under ``out_dir`` plus index.html; return scores."""
    for sub in ("clean", "degraded", "restored", "masks"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    generator, model_name = load_default_generator()
    rows = []
    for i, name in enumerate(SAMPLES):
        severity = SEVERITIES[i % len(SEVERITIES)]
        clean = image_to_tensor(Image.fromarray(getattr(skimage.data, name)()))
        plan = sample_plan(np.random.default_rng([seed, i]), clean.shape[1], clean.shape[2], severity)
        degraded, target, true_mask = apply_plan(clean, plan)
        images = {"clean": tensor_to_image(target), "degraded": tensor_to_image(degraded)}
        images["restored"], images["masks"] = restore_image(generator, images["degraded"])
        for sub, image in images.items():
            image.save(out_dir / sub / f"{name}.png")
        arrays = {k: np.asarray(v.convert("RGB")) for k, v in images.items() if k != "masks"}
        rows.append(
            DemoRow(
                name,
                severity,
                psnr(arrays["degraded"], arrays["clean"]),
                psnr(arrays["restored"], arrays["clean"]),
                ssim(arrays["degraded"], arrays["clean"]),
                ssim(arrays["restored"], arrays["clean"]),
                mask_iou(np.asarray(images["masks"]), np.asarray(tensor_to_image(true_mask))),
            )
        )
    _write_page(out_dir / "index.html", rows, model_name)
    return rows, model_name


def _write_page(path: Path, rows: list[DemoRow], model_name: str) -> None:
    cells = "".join(
        f"<tr><td>{html.escape(r.name)}<br>{r.severity}"
        f"<br>PSNR {r.psnr_degraded:.1f} &rarr; {r.psnr_restored:.1f}"
        f"<br>SSIM {r.ssim_degraded:.3f} &rarr; {r.ssim_restored:.3f}</td>"
        + "".join(
            f'<td><a href="{sub}/{r.name}.png"><img src="{sub}/{r.name}.png" width="320"></a></td>'
            for sub in ("degraded", "restored", "clean", "masks")
        )
        + "</tr>"
        for r in rows
    )
    path.write_text(
        "<!doctype html><meta charset=utf-8><title>patina demo</title>"
        "<style>body{font-family:sans-serif}td{vertical-align:top;padding:4px}</style>"
        f"<h1>patina demo</h1><p>Model: {html.escape(model_name)}</p>"
        "<table><tr><th></th><th>degraded</th><th>restored</th><th>clean</th><th>predicted defects</th></tr>"
        f"{cells}</table>"
    )
