"""The Ray Data actor that holds the generator on its device and restores batches of decoded images.

Callable without Ray too: ``Restorer(...)(batch)`` on a hand-built batch restores it in-process, which is
how the GPU path is exercised directly.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from model.checkpoints import DEFAULT_CHECKPOINT, CheckpointError, load_generator
from model.degradation.aging import LUMA
from model.restoration.fill import classical_fill, only_in_mask
from model.restoration.inference import default_autocast, tile_restorer
from model.tone.estimator import estimate
from model.tone.inference import load_estimator
from model.tone.physics import correct
from pipeline.batch.config import PipelineConfig
from pipeline.batch.decoding import Decoded
from pipeline.batch.stages import image_at, images_column, pages_at, pages_column
from pipeline.batch.tiling import restore_tiled
from pipeline.storage import Storage, StorageError

DEFECT_THRESHOLD = 0.5  # a pixel counts towards defect coverage when its defect probability exceeds this
_NO_PIXELS = np.zeros((0, 0, 0), np.uint8)  # a failed row's restored image


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def colour_tensor(pixels: np.ndarray, device: torch.device) -> torch.Tensor:
    """A decoded image, HxWxC uint8 or uint16, as (3, H, W) float in [0, 1] on ``device``: grey repeated to
    RGB, alpha left out (it is not the model's business)."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    return torch.from_numpy(colour.astype(np.float32) / scale).permute(2, 0, 1).to(device)


class NonFiniteOutputError(ValueError):
    """A model gave NaN or inf for an image: that row fails with this reason, the job goes on."""


def like_pixels(image: torch.Tensor, pixels: np.ndarray, keep_grey: bool = True) -> np.ndarray:
    """(3, H, W) float in [0, 1] back to ``pixels``' dtype and value range: grey in, grey out (Rec. 601
    luma, as Pillow's convert("L")) unless ``keep_grey`` is False; the input's alpha carried over bit for
    bit. A model output that is not finite is an error, never an image: NaN casts to black, and a black
    photo recorded as ``ok`` would be skipped as done by every resume."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    channels = pixels.shape[2]
    out = image.permute(1, 2, 0).float().cpu().numpy()  # (H, W, 3) in [0, 1]
    if not np.isfinite(out).all():
        raise NonFiniteOutputError("the model's output holds NaN or inf; nothing written (check the model)")
    if channels < 3 and keep_grey:
        out = (out @ np.array(LUMA, dtype=np.float32))[..., None]
    out = np.clip(np.rint(out * scale), 0, scale).astype(pixels.dtype)
    if channels in (2, 4):
        out = np.concatenate([out, pixels[..., -1:]], axis=2)
    return np.ascontiguousarray(out)


class ImageActor:
    """A Ray Data actor that maps each decoded row to one output image (``process``), row by row.

    Batch in: decode's columns (``pixels``, an images column read by ``image_at``, and ``error``, "" = ok).
    Batch out: the other columns plus ``restored`` (the output images column; ``channels`` now describes
    it), ``defect_coverage`` (fraction of pixels marked as defects), ``tone`` (the tone correction applied,
    as JSON; "" when none) and ``restore_ms``. A row that already
    failed, or an actor that refuses (``refusal``), passes the reason on; running out of GPU memory fails
    the row, not the actor.

    A multi-page TIFF's later pages (``more_pages``) are restored one after another by ``process``, as the
    first is, each on a one-row batch of its own; they leave as ``more_restored`` (``pages_at`` reads it)
    with their metadata, and ``defect_coverage`` is over all pages' pixels. With --masks, the mask written
    is the first page's; with --tone auto each page gets its own correction and ``tone`` records the first
    page's.
    """

    refusal = ""

    def process(self, batch: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, float]:
        """(output image, defect coverage), optionally followed by the defect mask (or None) and the tone
        correction's JSON."""
        raise NotImplementedError

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        n = len(batch["pixels"])
        restored = [_NO_PIXELS] * n
        coverage = np.zeros(n, dtype=np.float32)
        restore_ms = np.zeros(n, dtype=np.float64)
        errors = np.array(batch["error"], dtype=object)
        masks: list[np.ndarray | None] = [None] * n
        more: list[list[Decoded]] = [[] for _ in range(n)]
        tones = [""] * n
        for i in range(n):
            if errors[i]:
                continue
            if self.refusal:
                errors[i] = self.refusal
                continue
            started = time.perf_counter()
            try:
                restored[i], coverage[i], *extra = self.process(batch, i)
                masks[i] = extra[0] if extra else None
                tones[i] = extra[1] if len(extra) > 1 else ""
                more[i], coverage[i] = self._more_pages(batch, i, restored[i], coverage[i])
            except NonFiniteOutputError as exc:
                errors[i] = str(exc)
            except torch.OutOfMemoryError:
                errors[i] = (
                    "out of GPU memory on this image; lower --tile or --tiles-per-batch, or use fewer pixels"
                )
                torch.cuda.empty_cache()
            restore_ms[i] = (time.perf_counter() - started) * 1000
        # The decoded pixels are not needed downstream: dropping them halves what Ray moves to the encoders.
        rest = {k: v for k, v in batch.items() if k not in ("pixels", "more_pages")}
        # ``channels`` describes ``restored`` from here on: a print of a grayscale scan is toned colour.
        channels = np.array(
            [
                image.shape[2] if image.size else c
                for image, c in zip(restored, batch["channels"], strict=True)
            ],
            dtype=np.asarray(batch["channels"]).dtype,
        )
        # A run that writes masks (--masks) gives every batch the column, so blocks Ray concatenates agree.
        if getattr(getattr(self, "pipeline", None), "masks", False) or any(m is not None for m in masks):
            rest["defect_mask"] = images_column([_NO_PIXELS if m is None else m for m in masks])
        return {
            **rest,
            "channels": channels,
            "restored": images_column(restored),
            "more_restored": pages_column(more),
            "defect_coverage": coverage,
            "tone": np.array(tones, dtype=object),
            "restore_ms": restore_ms,
            "error": errors,
        }

    def _more_pages(
        self, batch: dict[str, np.ndarray], i: int, first: np.ndarray, coverage: float
    ) -> tuple[list[Decoded], float]:
        """Row ``i``'s later pages restored (their metadata kept), and the defect coverage of all pages."""
        pages = pages_at(batch, i)
        restored, covered, pixels = (
            [],
            coverage * first.shape[0] * first.shape[1],
            first.shape[0] * first.shape[1],
        )
        for page in pages:
            out, page_coverage, *_ = self.process(_one_page(batch, i, page.pixels), 0)
            restored.append(replace(page, pixels=out))
            area = out.shape[0] * out.shape[1]
            covered, pixels = covered + page_coverage * area, pixels + area
        return restored, (covered / pixels if pages and pixels else coverage)


def _one_page(batch: dict[str, np.ndarray], i: int, pixels: np.ndarray) -> dict[str, np.ndarray]:
    """A one-row batch holding one page of row ``i``, as ``process`` reads a row (its id seeds stylizers)."""
    return {
        "id": batch["id"][i : i + 1],
        "pixels": images_column([pixels]),
        "height": np.array([pixels.shape[0]]),
        "width": np.array([pixels.shape[1]]),
        "channels": np.array([pixels.shape[2]]),
        "bit_depth": np.array([16 if pixels.dtype == np.uint16 else 8]),
    }


class Restorer(ImageActor):
    """Loads the generator once in ``__init__`` and restores each row of a batch (``ImageActor``).

    ``restored`` has the input's shape, dtype and channels: grayscale stays grayscale, alpha is carried over
    untouched. The model runs in bf16 autocast where the device runs bf16 natively (GPUs, CPUs with AVX-512
    BF16 or AMX), with channels_last memory on GPU.
    """

    def __init__(
        self,
        checkpoint: str = str(DEFAULT_CHECKPOINT),
        storage: Storage | None = None,
        pipeline: PipelineConfig = PipelineConfig(),
        device: str = "auto",
        cpu_threads: int | None = None,
        expected_id: str | None = None,
    ):
        self.device = pick_device(device)
        if self.device.type == "cpu" and cpu_threads:
            # The pipeline runs one single-threaded actor per CPU (pipeline/batch/fused.py); called
            # directly, torch's default (every core) is kept.
            torch.set_num_threads(cpu_threads)
        self.pipeline = pipeline  # tiling: tile, overlap, tiles_per_batch; fill; tone
        # The shipped estimator (not a per-job option, so nothing to refuse per row); loaded once per actor.
        self.tone = load_estimator(device=self.device) if pipeline.tone == "auto" else None
        self.autocast = default_autocast(self.device)  # bf16 on GPUs and CPUs that run it natively
        # In a run (expected_id given), a model that is gone or changed since planning fails the remaining
        # rows with the reason, which a re-run with the right model finishes: an actor that raised here
        # would be restarted by Ray again and again instead. Called directly, it raises at once.
        self.refusal = ""
        try:
            generator, meta, checkpoint_id = load_generator(checkpoint, storage or Storage(), self.device)
            self.model_id = self.identify(checkpoint, checkpoint_id, meta.family)
        except (CheckpointError, StorageError) as exc:
            # An outage is not the model's fault: raising lets Ray start the actor again, which retries.
            if not expected_id or getattr(exc, "transient", False):
                raise
            self.refusal, self.model_id, self.generator = f"model {exc}", expected_id, None
            return
        if expected_id and self.model_id != expected_id:
            # A file replaced mid-run (a registry's latest promoted): results would name the wrong model.
            self.refusal = self.changed(checkpoint, expected_id, self.model_id)
            self.model_id = expected_id
        if self.device.type == "cuda":
            generator = generator.to(memory_format=torch.channels_last)
        self.generator = generator

    family = "restoration"

    def identify(self, checkpoint: str, checkpoint_id: str, family_name: str) -> str:
        """The id result rows record for this actor's model; a checkpoint of another family is refused."""
        if family_name != self.family:
            raise CheckpointError(f"{checkpoint}: is a {family_name} model, not a {self.family} model")
        return checkpoint_id

    def changed(self, checkpoint: str, expected_id: str, model_id: str) -> str:
        """Why rows are refused when the model is no longer the one the run was planned with."""
        return (
            f"{checkpoint}: changed since the run started ({expected_id} -> {model_id}); "
            "point --model at an immutable copy (a registry's versions/<id>.safetensors)"
        )

    def restore_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray, float]:
        """One decoded image, HxWxC uint8 or uint16 (16-bit) -> (restored, same layout, dtype and value range;
        defect coverage). Raises CheckpointError if the model was refused (see __init__)."""
        out, coverage, _ = self.restore_masked(pixels)
        return out, coverage

    def restore_masked(self, pixels: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """``restore_pixels`` and the detected defect mask, (H, W) bool: what the fill acted on."""
        out, coverage, detected, _ = self.restore_toned(pixels)
        return out, coverage, detected

    def restore_toned(self, pixels: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, str]:
        """``restore_masked`` and, with ``--tone auto``, the tone correction applied after the repair (read
        from the whole input, so every tile gets the same one) as JSON; "" when the tone is kept."""
        if self.refusal:
            raise CheckpointError(self.refusal)
        image = colour_tensor(pixels, self.device)
        restored, defects = restore_tiled(
            tile_restorer(self.generator, image, self.autocast),
            image,
            self.pipeline.tile,
            self.pipeline.overlap,
            self.pipeline.tiles_per_batch,
        )
        detected = (defects[0] > DEFECT_THRESHOLD).cpu().numpy()
        out = like_pixels(restored, pixels)
        if self.pipeline.fill == "mask":  # only what was detected changes; every other pixel is the input's
            out = only_in_mask(out, pixels, detected)
        elif self.pipeline.fill == "telea" and detected.any():
            out = _telea_fill(out, detected)
        tone = ""
        if self.tone is not None:
            # Read from the input, applied to the repair: a filled scratch must not sway the estimate, and
            # the same print gives the same correction whatever the fill.
            correction = estimate(self.tone, image, self.pipeline.tone_strength)
            if not correction.is_identity:  # most prints: nothing to undo, no round trip through float
                out = like_pixels(correct(colour_tensor(out, self.device), correction), out)
            tone = correction.to_json()
        return out, float(detected.mean()), detected, tone

    def process(self, batch: dict[str, np.ndarray], i: int) -> tuple:
        """(restored, defect coverage, the mask (H, W) uint8 0/255 when the run writes masks, tone JSON)."""
        out, coverage, detected, tone = self.restore_toned(image_at(batch, i))
        return out, coverage, (detected * np.uint8(255)) if self.pipeline.masks else None, tone


def _telea_fill(pixels: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """The detected pixels (grown by 1 px) of a restored HxWxC image replaced by OpenCV Telea inpainting
    from their surroundings. OpenCV inpaints 8-bit colour only, so a 16-bit image is filled on its 8-bit
    copy and only the filled pixels are taken back (scaled by 257); alpha stays as it is."""
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    wide = pixels.dtype == np.uint16
    narrow = ((colour >> 8) if wide else colour).astype(np.uint8)
    filled = classical_fill(narrow, detected)
    changed = (filled != narrow).any(axis=2)
    out = pixels.copy()
    values = filled.astype(pixels.dtype) * (257 if wide else 1)
    if pixels.shape[2] >= 3:
        out[..., :3][changed] = values[changed]
    else:
        out[..., 0][changed] = values[..., 0][changed]
    return out
