"""The Ray Data actors that give decoded images a period look (model/retro/).

- ``Stylizer``: an era preset through the parametric renderer (``--model era:NAME``, ``stylize --era``).
- ``ReferenceStylizer``: the look of a real old photo, read by the retro model's style encoder and applied by
  its generator (a retro checkpoint as ``--model`` and ``--reference URI``, ``patina stylize --reference``).
Both go through the same job as restoration: manifest, fetch, decode, the actor in place of the
``Restorer``, encode and write, results manifest. Callable without Ray: ``Stylizer("1900s-sepia")(batch)``.
"""

from __future__ import annotations

import hashlib
import io
import zlib

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from model.checkpoints import DEFAULT_RETRO_CHECKPOINT, CheckpointError, load_generator
from model.degradation.engine import image_to_tensor
from model.restoration.inference import default_autocast
from model.retro.encoder import Style
from model.retro.eras import era
from model.retro.generator import stylize
from model.retro.render import render
from pipeline.batch.config import ERA_SCHEME
from pipeline.batch.restorer import ImageActor, Restorer, colour_tensor, like_pixels, pick_device
from pipeline.batch.stages import image_at
from pipeline.storage import Storage, StorageError

REFERENCE_SIDE = 1024  # the encoder reads a 128 px view and whole-image statistics: 1024 px is plenty


def era_name(model: str) -> str | None:
    """The era of an ``era:NAME`` model, None for a checkpoint."""
    return model[len(ERA_SCHEME) :] if model.startswith(ERA_SCHEME) else None


def era_model_id(name: str) -> str:
    """What the results manifest records as the model of an era run: family, era and a digest of the
    parameters, so a changed preset is never mistaken for the one that made earlier outputs."""
    digest = hashlib.sha256(era(name).to_json().encode()).hexdigest()[:12]
    return f"retro:{name}:{digest}"


class Stylizer(ImageActor):
    """Renders each row as a print of ``era_name``. Each image's grain and wear are seeded by its row id, so a
    re-run or a retried batch writes the same bytes. Prints are colour (toned) even from grayscale scans;
    alpha is carried over."""

    def __init__(self, era_name: str, device: str = "auto", cpu_threads: int | None = None):
        self.params = era(era_name)
        self.model_id = era_model_id(era_name)
        self.device = pick_device(device)
        if self.device.type == "cpu" and cpu_threads:
            torch.set_num_threads(cpu_threads)

    def process(self, batch: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, float]:
        pixels = image_at(batch, i)
        seed = zlib.crc32(str(batch["id"][i]).encode())
        out = render(colour_tensor(pixels, self.device), self.params, seed)
        return like_pixels(out, pixels, keep_grey=False), 0.0


def read_reference(uri: str, storage: Storage) -> tuple[torch.Tensor, str]:
    """A reference photo as (1, 3, h, w) in [-1, 1] (upright by its EXIF orientation, 16-bit scans at full
    depth, long side at most REFERENCE_SIDE) and the digest of its bytes; anything but a readable image is
    a one-line ValueError."""
    data = storage.read_bytes(uri)
    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = image_to_tensor(ImageOps.exif_transpose(image))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{uri}: the reference is not a readable image ({exc})") from None
    height, width = pixels.shape[-2:]
    scale = REFERENCE_SIDE / max(height, width)
    if scale < 1:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        pixels = F.interpolate(pixels[None], size, mode="bilinear", antialias=True, align_corners=False)[0]
    return pixels[None].clamp(0, 1) * 2 - 1, hashlib.sha256(data).hexdigest()[:12]


def reference_model_id(checkpoint_id: str, reference_digest: str) -> str:
    """What result rows of a reference run record: the retro checkpoint and the reference's content, so one
    output prefix holds one look."""
    return f"{checkpoint_id}+reference-{reference_digest}"


class ReferenceStylizer(Restorer):
    """Gives each row the look of ``reference``: the retro model's encoder reads the reference once, its
    generator restyles every image tile by tile (model/retro/generator.stylize). Checkpoint loading, the
    model-changed refusal and bf16 are the ``Restorer``'s; the recorded id adds the reference's digest."""

    family = "retro"

    def __init__(
        self,
        checkpoint: str,
        reference: str,
        storage: Storage | None = None,
        device: str = "auto",
        cpu_threads: int | None = None,
        expected_id: str | None = None,
    ):
        # As for the checkpoint (Restorer): in a run, a reference gone or broken since planning fails the
        # remaining rows with the reason instead of an actor Ray would restart again and again.
        self.reference_uri, self.reference, refused = reference, None, ""
        try:
            self.reference, self.reference_digest = read_reference(reference, storage or Storage())
        except (ValueError, StorageError) as exc:
            if not expected_id or getattr(exc, "transient", False):
                raise
            self.reference_digest, refused = "unreadable", f"reference {exc}"
        super().__init__(checkpoint, storage, device=device, cpu_threads=cpu_threads, expected_id=expected_id)
        self.refusal = refused or self.refusal
        self.style: Style | None = None
        if self.generator is not None and self.reference is not None:
            self.style = read_look(self.generator, self.reference)

    def identify(self, checkpoint: str, checkpoint_id: str, family_name: str) -> str:
        return reference_model_id(
            super().identify(checkpoint, checkpoint_id, family_name), self.reference_digest
        )

    def changed(self, checkpoint: str, expected_id: str, model_id: str) -> str:
        if expected_id.split("+reference-")[0] == model_id.split("+reference-")[0]:
            return (
                f"{self.reference_uri}: the reference changed since the run started; point --reference at a "
                "copy that does not change"
            )
        return super().changed(checkpoint, expected_id, model_id)

    def _autocast(self):
        return _autocast(self.device, self.autocast)

    def restore_pixels(self, pixels: np.ndarray) -> tuple[np.ndarray, float]:
        raise TypeError("a ReferenceStylizer stylizes rows (process); it does not restore")

    def process(self, batch: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, float]:
        if self.refusal or self.style is None:
            raise CheckpointError(self.refusal)
        pixels = image_at(batch, i)
        photo = colour_tensor(pixels, self.device)[None] * 2 - 1
        with self._autocast():
            out = stylize(self.generator, photo, self.style)
        return like_pixels(((out[0].float() + 1) / 2).clamp(0, 1), pixels, keep_grey=False), 0.0


def load_retro(model: str | None, storage: Storage, device: str | torch.device = "cpu"):
    """The retro model at ``model`` (default: the shipped one) and its id; a model of another family is a
    one-line error."""
    uri = model or str(DEFAULT_RETRO_CHECKPOINT)
    generator, meta, checkpoint_id = load_generator(uri, storage, device)
    if meta.family != "retro":
        raise ValueError(f"{uri}: is a {meta.family} model; a reference needs a retro model")
    return generator, checkpoint_id


def estimate_look(generator, reference: str, storage: Storage) -> tuple[Style, str]:
    """The retro model's reading of ``reference``: its style and the digest of the reference's bytes."""
    image, digest = read_reference(reference, storage)
    return read_look(generator, image), digest


def read_look(generator, reference: torch.Tensor) -> Style:
    """The style the retro model's encoder reads from a reference (``read_reference``'s tensor), under the
    same autocast as the archive job's actors."""
    device = next(generator.parameters()).device
    with torch.no_grad(), _autocast(device, default_autocast(device)):
        return generator.encoder(reference.to(device))


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None)
