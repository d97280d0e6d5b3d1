"""Training data: clean photos read by Ray Data, then random crops, flips and synthetic degradations made on
the fly inside each training worker, deterministic for a seed.

Ray Data fetches and decodes the clean manifest (S3 or local) in parallel; each worker keeps the photos whose
row index falls to its rank (index % world_size == rank), so the shard a worker trains on depends only on
the manifest and the worker count, never on scheduling. Every training pair is drawn from
``numpy.random.default_rng([seed, rank, pair number])``: the same seed gives the same pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import ray
import torch
import torch.nn.functional as F
from PIL import Image

from model.degradation.engine import apply_plan
from model.degradation.mixture import sample_training_plan
from model.formats import IMAGE_EXTENSIONS
from model.restoration.gan import Batch
from pipeline.batch.stages import image_at, images_column, read_images
from pipeline.manifest import read_manifest
from pipeline.storage import Storage

PHOTOS_PER_BLOCK = 16  # clean photos per Ray Data block: one fetch and one decode call each


def clean_table(source: str, storage: Storage, keep: Callable[[str], bool] | None = None) -> pa.Table:
    """Rows (index, uri) of the clean photos: a Parquet manifest, or every image under a folder / prefix;
    with ``keep``, only the uris it accepts (the training split of real photos)."""
    if source.endswith(".parquet"):
        uris = read_manifest(source, storage)["uri"]
    else:
        uris = pa.array(sorted(info.uri for info in storage.list(source, IMAGE_EXTENSIONS)), pa.string())
    if keep is not None:
        uris = pa.array([uri for uri in uris.to_pylist() if keep(uri)], pa.string())
    if len(uris) == 0:
        raise ValueError(f"{source}: no training images found")
    return pa.table({"index": pa.array(np.arange(len(uris)), pa.int64()), "uri": uris})


def _to_rgb(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep the rows that decoded (training skips unreadable files) as index and an images column of
    (H, W, 3) uint8 RGB, with bit_depth, height, width and channels for ``image_at``."""
    keep = [i for i, error in enumerate(batch["error"]) if not error]
    photos = []
    for i in keep:
        p = image_at(batch, i)
        p = (p >> 8).astype(np.uint8) if p.dtype == np.uint16 else p
        photos.append(np.repeat(p[..., :1], 3, axis=2) if p.shape[2] < 3 else p[..., :3])
    return {
        "index": np.asarray(batch["index"])[keep],
        "pixels": images_column(photos),
        "bit_depth": np.full(len(keep), 8, np.int32),
        "height": np.asarray(batch["height"])[keep],
        "width": np.asarray(batch["width"])[keep],
        "channels": np.full(len(keep), 3, np.int32),
    }


def clean_dataset(
    source: str, storage: Storage, max_pixels: int = 50_000_000, keep: Callable[[str], bool] | None = None
) -> ray.data.Dataset:
    """Ray Data: fetch -> decode -> RGB uint8 for every clean photo, with its manifest row index."""
    table = clean_table(source, storage, keep)
    blocks = [table.slice(i, PHOTOS_PER_BLOCK) for i in range(0, table.num_rows, PHOTOS_PER_BLOCK)]
    ds = read_images(ray.data.from_arrow(blocks), storage, max_pixels)
    return ds.map_batches(_to_rgb, batch_size=None, batch_format="numpy")


def worker_photos(shard, rank: int, world_size: int) -> list[np.ndarray]:
    """This worker's photos, in manifest order: rows whose index % world_size == rank."""
    photos: dict[int, np.ndarray] = {}
    for batch in shard.iter_batches(batch_size=PHOTOS_PER_BLOCK, batch_format="numpy"):
        for i, index in enumerate(batch["index"]):
            if int(index) % world_size == rank:
                photos[int(index)] = image_at(batch, i).copy()  # writable, and free of the batch's buffer
    if not photos:
        raise ValueError(f"worker {rank} of {world_size} got no training photos; use fewer workers")
    return [photos[i] for i in sorted(photos)]


# Pairs cropped from a thumbnail of the whole photo (a crop then holds most of the picture): the generator's
# tone head reads whole-image statistics at inference (model/context.tone_context), so it must also learn from
# crops whose statistics are those of a whole photo, not only of a patch of sky or a face.
WHOLE_PHOTO_FRACTION = 0.3


class RenderedPool:
    """Training entries drawn from a pool of rendered samples that is refreshed in the background.

    Rendering a sample costs more CPU than a training step spends on it, so on a 2-core box samples
    rendered on the fly starve the model (Real-ESRGAN keeps a pool for a related reason). The pool holds
    ``size`` samples (each a tuple of tensors from ``_sample``); every step ``refresh`` new ones replace the
    oldest, rendered in a thread while the step trains. Subclasses render samples and assemble batches.

    Deterministic and resumable: sample number g is drawn from ``default_rng([seed, rank, g])`` and lives
    in slot ``g % size``; before step s the pool holds, in each slot, the newest sample with
    g < size + s * refresh. So the pool at any step can be rebuilt from the step alone, and a resumed run
    sees the same batches.
    """

    def __init__(self, seed: int, rank: int, size: int, refresh: int, device: torch.device | None = None):
        if size < 1 or refresh < 0:
            raise ValueError(f"pool size must be >= 1 and refresh >= 0, got {size} and {refresh}")
        self.seed, self.rank, self.size, self.refresh = seed, rank, size, refresh
        self.device = device or torch.device("cpu")
        self.slots: list[torch.Tensor] = []  # one (size, ...) tensor per part of a sample
        self._step: int | None = None  # pool content is that of the start of this step
        self._thread = ThreadPoolExecutor(1)
        self._pending: tuple[int, Future[list]] | None = None

    def _sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _draw(self, step: int, batch_size: int) -> tuple[np.random.Generator, torch.Tensor]:
        """Bring the pool to ``step``; return the step's generator and the ``batch_size`` slots it draws.
        Starts rendering the samples this step adds, while the step trains."""
        self._advance_to(step)
        rng = np.random.default_rng([self.seed, self.rank, step, 1 << 30])
        index = torch.from_numpy(rng.integers(self.size, size=batch_size))
        self._pending = (step, self._thread.submit(self._render, self._new_ids(step)))
        return rng, index

    def _new_ids(self, step: int) -> range:
        start = self.size + step * self.refresh
        return range(start, start + self.refresh)

    def _advance_to(self, step: int) -> None:
        if self._step == step:
            return
        if (
            self._step is not None
            and step == self._step + 1
            and self._pending
            and self._pending[0] == self._step
        ):
            self._store(self._new_ids(self._step), self._pending[1].result())
        else:  # first batch, or a jump (resume): rebuild the pool as it stands at ``step``
            newest = self.size + step * self.refresh
            ids = [max(g for g in range(slot, newest, self.size)) for slot in range(self.size)]
            self._store(ids, self._render(ids))
        self._pending, self._step = None, step

    def _store(self, ids, samples: list) -> None:
        for g, sample in zip(ids, samples, strict=True):
            if not self.slots:
                self.slots = [torch.empty((self.size, *t.shape), dtype=t.dtype) for t in sample]
            for slots, part in zip(self.slots, sample, strict=True):
                slots[g % self.size] = part

    def _render(self, ids) -> list:
        return [self._sample(np.random.default_rng([self.seed, self.rank, g])) for g in ids]


class PairPool(RenderedPool):
    """Degraded pairs (degraded, clean, defect mask) as uint8 crops; a batch is ``batch_size`` pool entries,
    each in one of the 8 flips/rotations.

    With ``real`` photos (real old prints, no clean original), a ``real_fraction`` of the pairs is drawn on
    them instead: the same plan painted on the real crop, the real crop as the target, and a fourth slot, the
    pixels the loss may judge: the painted defects and a rim around them, since the real crop's own cracks
    are neither clean nor labelled. So the detector and the fill learn defects over real grain, toning and
    paper, the domain the shipped model meets (docs/MODEL.md), and never learn to keep or to flag a real crack
    by a wrong label. Without real photos no fourth slot is drawn and the pairs are those of earlier runs."""

    def __init__(
        self,
        photos: list[np.ndarray],
        crop: int,
        mixture: str,
        seed: int,
        rank: int,
        size: int,
        refresh: int,
        device: torch.device | None = None,
        real: list[np.ndarray] | None = None,
        real_fraction: float = 0.0,
    ):
        super().__init__(seed, rank, size, refresh, device)
        self.photos, self.crop, self.mixture = photos, crop, mixture
        self.thumbnails = [shrunk(photo, round(crop * 1.25)) for photo in photos]
        self.real = real or []
        self.real_fraction = real_fraction if self.real else 0.0
        self.real_thumbnails = [shrunk(photo, round(crop * 1.25)) for photo in self.real]

    @property
    def degraded(self) -> torch.Tensor:
        return self.slots[0]

    @property
    def clean(self) -> torch.Tensor:
        return self.slots[1]

    @property
    def mask(self) -> torch.Tensor:
        return self.slots[2]

    def batch(self, step: int, batch_size: int) -> Batch:
        """The batch for ``step``: images (B, 3, crop, crop) in [-1, 1], masks (B, 1, crop, crop), on the
        pool's device; with real photos also the judged pixels (B, 1, crop, crop)."""
        rng, index = self._draw(step, batch_size)
        turns, flips = rng.integers(4, size=batch_size), rng.random(batch_size) < 0.5
        parts = [
            torch.stack(
                [dihedral(source[j], int(k), bool(f)) for j, k, f in zip(index, turns, flips, strict=True)]
            )
            .to(self.device)
            .float()
            .div(255)
            for source in self.slots
        ]
        degraded, clean, mask = parts[:3]
        return Batch(degraded * 2 - 1, clean * 2 - 1, mask, parts[3] if len(parts) > 3 else None)

    def _sample(self, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        on_real = self.real_fraction > 0 and rng.random() < self.real_fraction
        photos, thumbnails = (self.real, self.real_thumbnails) if on_real else (self.photos, self.thumbnails)
        index = rng.integers(len(photos))
        whole = rng.random() < WHOLE_PHOTO_FRACTION
        photo = thumbnails[index] if whole else photos[index]
        h, w = photo.shape[:2]
        c = self.crop
        top, left = rng.integers(max(h - c, 0) + 1), rng.integers(max(w - c, 0) + 1)
        patch = photo[top : top + c, left : left + c]
        if patch.shape[:2] != (c, c):  # photo smaller than the crop: reflect-pad up to it
            patch = np.pad(patch, ((0, c - patch.shape[0]), (0, c - patch.shape[1]), (0, 0)), mode="reflect")
        clean = torch.from_numpy(np.ascontiguousarray(patch)).permute(2, 0, 1).float() / 255
        degraded, target, mask = apply_plan(clean, sample_training_plan(rng, c, c, self.mixture))
        sample = [(t * 255).round().to(torch.uint8) for t in (degraded, target, mask)]
        if self.real_fraction > 0:
            judged = judged_pixels(mask) if on_real else torch.ones_like(mask)
            sample.append((judged * 255).to(torch.uint8))
        return tuple(sample)


REAL_RIM = 4  # px around a painted defect that the loss also judges on a real photo (a false mask must cost)


def judged_pixels(mask: torch.Tensor) -> torch.Tensor:
    """(1, H, W) {0, 1}: the pixels of a real-photo pair the loss judges, the painted ``mask`` grown by
    ``REAL_RIM``; none where nothing was painted (an identity pair on a real print teaches nothing sure)."""
    size = 2 * REAL_RIM + 1
    return F.max_pool2d((mask > 0).float()[None], size, stride=1, padding=REAL_RIM)[0]


def shrunk(photo: np.ndarray, short_side: int) -> np.ndarray:
    """The photo scaled down (area-averaged) so its short side is ``short_side``; small photos as they are."""
    h, w = photo.shape[:2]
    if min(h, w) <= short_side:
        return photo
    size = (
        max(short_side, round(w * short_side / min(h, w))),
        max(short_side, round(h * short_side / min(h, w))),
    )
    return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.BOX))


def dihedral(image: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    """One of the 8 rotations/flips of a (C, H, W) crop."""
    out = image.rot90(turns, (1, 2))
    return out.flip(2) if flip else out
