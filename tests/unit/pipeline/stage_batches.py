"""Hand-built batches for calling the stages without Ray, shared by the stage tests."""

from __future__ import annotations

import numpy as np


def column(values: list) -> np.ndarray:
    """A 1-D object column, as Ray's "numpy" batches hold strings, bytes and images."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def manifest(uris: list[str]) -> dict[str, np.ndarray]:
    """Manifest rows (id-0, id-1, ...) for ``uris``: what fetch takes."""
    return {"id": column([f"id-{i}" for i in range(len(uris))]), "uri": column(uris)}


def restore(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Stand-in for the model actor: each 'restored' image (a multi-page TIFF's later pages too) is an exact
    copy of its pixels."""
    n = len(batch["id"])
    return {
        **batch,
        "restored": batch["pixels"].copy(),
        "more_restored": batch["more_pages"].copy() if "more_pages" in batch else np.full(n, b"", object),
        "defect_coverage": np.full(n, 0.25, np.float32),
        "restore_ms": np.full(n, 2.0),
    }
