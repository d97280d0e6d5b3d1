"""Training data: clean photos read by Ray Data, then random crops, flips and synthetic degradations made on
the fly inside each training worker, deterministic for a seed.

Ray Data fetches and decodes the clean manifest (S3 or local) in parallel; each worker keeps the photos whose
row index falls to its rank (index % world_size == rank), so the shard a worker trains on depends only on
the manifest and the worker count, never on scheduling. Every training pair is drawn from
``numpy.random.default_rng([seed, rank, step, i])``: the same seed gives the same pairs.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import ray
import torch

from model.degradations import apply_plan, sample_plan
from model.gan import Batch
from pipeline.manifest import IMAGE_EXTENSIONS, read_manifest
from pipeline.stages import decode, fetch
from pipeline.storage import Storage


def clean_table(source: str, storage: Storage) -> pa.Table:
    """Rows (index, uri) of the clean photos: a Parquet manifest, or every image under a folder / prefix."""
    if source.endswith(".parquet"):
        uris = read_manifest(source, storage)["uri"]
    else:
        uris = pa.array(sorted(info.uri for info in storage.list(source, IMAGE_EXTENSIONS)), pa.string())
    if len(uris) == 0:
        raise ValueError(f"{source}: no training images found")
    return pa.table({"index": pa.array(np.arange(len(uris)), pa.int64()), "uri": uris})


def _to_rgb(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep index and (H, W, 3) uint8 RGB pixels of the rows that decoded; training skips unreadable files."""
    keep = [i for i, error in enumerate(batch["error"]) if not error]
    pixels = np.empty(len(keep), dtype=object)
    for j, i in enumerate(keep):
        p = np.asarray(batch["pixels"][i])
        p = (p >> 8).astype(np.uint8) if int(batch["bit_depth"][i]) == 16 else p.astype(np.uint8)
        pixels[j] = np.ascontiguousarray(np.repeat(p[..., :1], 3, axis=2) if p.shape[2] < 3 else p[..., :3])
    return {"index": np.asarray(batch["index"])[keep], "pixels": pixels}


def clean_dataset(source: str, storage: Storage, max_pixels: int = 50_000_000) -> ray.data.Dataset:
    """Ray Data: fetch -> decode -> RGB uint8 for every clean photo, with its manifest row index."""
    table = clean_table(source, storage)
    blocks = [table.slice(i, 16) for i in range(0, table.num_rows, 16)]
    ds = ray.data.from_arrow(blocks)
    ds = ds.map_batches(
        fetch, fn_kwargs={"storage": storage}, batch_size=16, batch_format="numpy", num_cpus=0.25
    )
    ds = ds.map_batches(decode, fn_kwargs={"max_pixels": max_pixels}, batch_size=16, batch_format="numpy")
    return ds.map_batches(_to_rgb, batch_size=16, batch_format="numpy")


def worker_photos(shard, rank: int, world_size: int) -> list[np.ndarray]:
    """This worker's photos, in manifest order: rows whose index % world_size == rank."""
    photos: dict[int, np.ndarray] = {}
    for batch in shard.iter_batches(batch_size=16, batch_format="numpy"):
        for index, pixels in zip(batch["index"], batch["pixels"], strict=True):
            if int(index) % world_size == rank:
                photos[int(index)] = np.asarray(pixels)
    if not photos:
        raise ValueError(f"worker {rank} of {world_size} got no training photos; use fewer workers")
    return [photos[i] for i in sorted(photos)]


class PairSampler:
    """Draws batches of (degraded, clean, mask) crops from in-memory photos.

    ``device``: where degradations run (the GPU inside the loop, or the CPU). On CPU the next batch is
    prepared in a background thread while the current step trains.
    """

    def __init__(
        self,
        photos: list[np.ndarray],
        crop: int,
        severities: tuple[str, ...],
        weights: tuple[float, ...],
        seed: int,
        rank: int,
        device: torch.device,
    ):
        self.photos, self.crop, self.seed, self.rank, self.device = photos, crop, seed, rank, device
        self.severities, self.weights = severities, np.asarray(weights) / np.sum(weights)
        self._pool = ThreadPoolExecutor(1) if device.type == "cpu" else None
        self._next: tuple[int, int, Future[Batch]] | None = None

    def batch(self, step: int, batch_size: int) -> Batch:
        """The batch for ``step``: images (B, 3, crop, crop) in [-1, 1], masks (B, 1, crop, crop), on
        ``device``."""
        if self._pool is None:
            return self._make(step, batch_size)
        future = self._next[2] if self._next and self._next[:2] == (step, batch_size) else None
        current = future.result() if future else self._make(step, batch_size)
        self._next = (step + 1, batch_size, self._pool.submit(self._make, step + 1, batch_size))
        return current

    def _make(self, step: int, batch_size: int) -> Batch:
        triples = [
            self._pair(np.random.default_rng([self.seed, self.rank, step, i])) for i in range(batch_size)
        ]
        degraded, clean, mask = (torch.stack(t) for t in zip(*triples, strict=True))
        return Batch(degraded * 2 - 1, clean * 2 - 1, mask)

    def _pair(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        photo = self.photos[rng.integers(len(self.photos))]
        h, w = photo.shape[:2]
        c = self.crop
        top, left = rng.integers(max(h - c, 0) + 1), rng.integers(max(w - c, 0) + 1)
        patch = photo[top : top + c, left : left + c]
        if patch.shape[:2] != (c, c):  # photo smaller than the crop: reflect-pad up to it
            patch = np.pad(patch, ((0, c - patch.shape[0]), (0, c - patch.shape[1]), (0, 0)), mode="reflect")
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        clean = torch.from_numpy(np.ascontiguousarray(patch)).to(self.device).permute(2, 0, 1).float() / 255
        severity = self.severities[rng.choice(len(self.severities), p=self.weights)]
        return apply_plan(clean, sample_plan(rng, c, c, severity))  # (3,c,c), (3,c,c), (1,c,c)
