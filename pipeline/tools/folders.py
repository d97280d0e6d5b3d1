"""Folder-level tools for people looking at results: degrade a folder, restore it with the classical
baseline, lift its fading (``--tone auto`` on its own), render it as period prints, evaluate restored vs
clean.

These run in-process on local folders; the archive-scale job is pipeline/batch/driver.py.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from model.degradation.engine import (
    GREY_MODES,
    apply_plan,
    image_to_tensor,
    like_source,
    sample_plan,
    tensor_to_image,
)
from model.files import write_atomically
from model.formats import IMAGE_EXTENSIONS
from model.metrics import mask_iou, psnr, ssim
from model.restoration.baseline import restore_classical
from pipeline.manifest import one_line


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def image_seed(seed: int, name: str) -> np.random.Generator:
    """Per-image generator from (seed, file name): adding files to a folder never changes the others."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def refuse_same_folder(src: Path, dst: Path) -> None:
    """Every folder tool writes beside its input, never over it: ``dst == src`` is a one-line error."""
    if Path(dst).resolve() == Path(src).resolve():
        raise ValueError(
            f"{dst}: output folder is the input folder; choose another so originals stay untouched"
        )


@dataclass(frozen=True)
class DegradedFiles:
    source: Path
    degraded: Path
    clean: Path
    mask: Path


def degrade_folder(src: Path, dst: Path, severity: str = "medium", seed: int = 0) -> Iterator[DegradedFiles]:
    """For each image in ``src`` write ``<stem>.png`` (degraded), ``<stem>.clean.png`` (the target: grayscale
    when the plan made the photo grayscale) and ``<stem>.mask.png`` (defect mask) to ``dst``.
    Refuses dst == src so originals are never overwritten."""
    refuse_same_folder(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    for path in list_images(src):
        with Image.open(path) as image:
            clean = image_to_tensor(image)  # (3, H, W) in [0, 1]
        plan = sample_plan(image_seed(seed, path.name), clean.shape[1], clean.shape[2], severity)
        degraded, target, mask = apply_plan(clean, plan)
        files = DegradedFiles(
            path, dst / f"{path.stem}.png", dst / f"{path.stem}.clean.png", dst / f"{path.stem}.mask.png"
        )
        tensor_to_image(degraded).save(files.degraded)
        tensor_to_image(target).save(files.clean)
        tensor_to_image(mask).save(files.mask)
        yield files


@dataclass(frozen=True)
class FolderOutcome:
    source: Path
    written: Path
    status: str  # "ok" | "skipped" (already written by an earlier run) | "failed"
    error: str = ""


def baseline_folder(src: Path, dst: Path) -> Iterator[FolderOutcome]:
    """Restore every image in ``src`` with the classical baseline into ``dst/<stem>.png`` (lossless).
    In a ``patina degrade`` folder the ``.clean`` targets and ``.mask`` files are skipped: only the degraded
    images are inputs. See ``map_folder`` for what is kept safe."""
    yield from map_folder(src, dst, lambda path, image: _baseline_image(image), degrade_outputs=True)


def tone_folder(src: Path, dst: Path, estimator=None, cap: float = 1.0) -> Iterator[FolderOutcome]:
    """``--tone auto`` on every image in ``src`` into ``dst/<stem>.png``, each correction recorded beside it
    as ``dst/<file name>.tone.json`` (model.tone.physics.ToneCorrection: what was read, the strength used),
    so it can be seen and undone. Grey stays grey, alpha is carried over. See ``map_folder``."""
    from model.tone.inference import auto_tone, load_estimator

    estimator = estimator or load_estimator()

    def lift(path: Path, image: Image.Image) -> Image.Image:
        corrected, correction = auto_tone(image_to_tensor(image), estimator, cap)
        record = correction.to_json().encode()
        write_atomically(dst / f"{path.name}.tone.json", lambda file: file.write(record))
        return like_source(tensor_to_image(corrected), image)

    yield from map_folder(src, dst, lift)


def stylize_folder(src: Path, dst: Path, params, seed: int = 0) -> Iterator[FolderOutcome]:
    """Render every image in ``src`` as a period print (``model.retro.RetroParams``) into ``dst/<stem>.png``;
    each image's grain and wear are seeded by (seed, file name). Prints are colour (toned) even from grey
    scans; alpha is carried over, as ``patina stylize`` does. See ``map_folder``: one folder per look."""
    from model.retro.render import render

    def stylize(path: Path, image: Image.Image) -> Image.Image:
        look_seed = int(image_seed(seed, path.name).integers(2**31))
        printed = tensor_to_image(render(image_to_tensor(image), params, look_seed))
        return like_source(printed, image, keep_grey=False)

    yield from map_folder(src, dst, stylize)


def map_folder(
    src: Path,
    dst: Path,
    transform: Callable[[Path, Image.Image], Image.Image],
    degrade_outputs: bool = False,
) -> Iterator[FolderOutcome]:
    """Write ``transform(path, image)`` of every image in ``src`` to ``dst/<stem>.png`` (lossless).

    Two inputs sharing a stem (a.jpg, a.tif) are written under their full names (a.jpg.png, a.tif.png).
    Outputs already in ``dst`` are kept (a re-run resumes), an unreadable image is reported as failed and the
    rest go on, a killed run never leaves a half-written file under a final name, and ``dst == src`` is
    refused so originals are never written. ``degrade_outputs`` skips a degrade folder's targets and masks."""
    refuse_same_folder(src, dst)
    dst.mkdir(parents=True, exist_ok=True)
    inputs = list_images(src)
    if degrade_outputs:
        inputs = [p for p in inputs if ".clean." not in p.name and ".mask." not in p.name]
    stems = Counter(p.stem for p in inputs)
    for path in inputs:
        # a.jpg and a.tif would both become a.png: such files keep their full name (a.jpg.png, a.tif.png).
        out = dst / f"{path.stem if stems[path.stem] == 1 else path.name}.png"
        if out.exists():
            yield FolderOutcome(path, out, "skipped")
            continue
        try:
            with Image.open(path) as image:
                written = transform(path, ImageOps.exif_transpose(image))
        except (OSError, ValueError, Image.DecompressionBombError) as exc:  # truncated, not an image, huge
            yield FolderOutcome(path, out, "failed", f"{path.name}: {one_line(exc)}")
            continue
        # Atomic: a killed run never leaves a half-written output under the final name.
        write_atomically(out, lambda file, image=written: image.save(file, format="PNG"))
        yield FolderOutcome(path, out, "ok")


def _baseline_image(image: Image.Image) -> Image.Image:
    gray = image.mode in GREY_MODES
    pixels = np.asarray(image_to_tensor(image).mul(255).round().byte().permute(1, 2, 0).numpy())
    return like_source(Image.fromarray(restore_classical(pixels[..., 0] if gray else pixels)), image)


@dataclass(frozen=True)
class ImageScore:
    name: str
    psnr: float
    ssim: float
    mask_iou: float | None = None


def evaluate_folders(
    restored_dir: Path, clean_dir: Path, pred_masks: Path | None = None, true_masks: Path | None = None
) -> list[ImageScore]:
    """Score every restored image against the clean image with the same stem (``x.png`` vs ``x.jpg``).
    Mask folders hold ``<stem>.mask.png``. Images are compared as RGB uint8."""
    # In a `patina degrade` folder, "x.clean.png" is the target and "x.png" the degraded input.
    clean_files = [p for p in list_images(clean_dir) if ".mask." not in p.name]
    clean_by_stem = {_stem(p): p for p in sorted(clean_files, key=lambda p: ".clean." in p.name)}
    scores = []
    for path in list_images(restored_dir):
        stem = _stem(path)
        if stem not in clean_by_stem or ".mask." in path.name or ".clean." in path.name:
            continue
        restored, clean = _rgb(path), _rgb(clean_by_stem[stem])
        if restored.shape != clean.shape:
            raise ValueError(f"{path.name}: size {restored.shape[:2]} differs from clean {clean.shape[:2]}")
        iou = None
        if pred_masks and true_masks:
            iou = mask_iou(_gray(pred_masks / f"{stem}.mask.png"), _gray(true_masks / f"{stem}.mask.png"))
        scores.append(ImageScore(stem, psnr(restored, clean), ssim(restored, clean), iou))
    if not scores:
        raise ValueError(f"no restored image in {restored_dir} has a clean counterpart in {clean_dir}")
    return scores


def _stem(path: Path) -> str:
    # "x.clean.png" and "x.png" both belong to image "x".
    return path.name.split(".")[0]


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _gray(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("L"))
