"""Batch restoration settings: the one typed config of a restore run's pipeline (tiling, batching, limits,
output format), checked when built so a bad value is a one-line error before any work starts."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.batch.outputs import OUTPUT_FORMATS


@dataclass(frozen=True)
class PipelineConfig:
    """Batch restoration settings (used by pipeline/)."""

    tile: int = 512  # scans larger than this are restored in overlapping tiles
    overlap: int = 32
    tiles_per_batch: int = 8  # tiles per generator forward: bounds GPU memory whatever the scan size
    batch_size: int = 64  # most images per Ray Data batch (block); fewer when they add up to block_bytes
    # Input bytes per block, from the manifest's ``size``: ~1 MB is a few seconds of model work per block on
    # a CPU core, so tiny images share one block (each costs Ray ~30 ms) and large ones spread over all
    # actors instead of queueing behind one (docs/PERFORMANCE.md).
    block_bytes: int = 1_000_000
    max_pixels: int = 200_000_000  # decompression-bomb guard
    output_format: str = "same"  # same | png | jpeg | tiff | webp

    def __post_init__(self) -> None:
        if self.overlap < 0 or self.tile <= self.overlap:
            raise ValueError(f"tile ({self.tile}) must be larger than overlap ({self.overlap}), overlap >= 0")
        for name in ("tiles_per_batch", "batch_size", "max_pixels", "block_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"unknown output format {self.output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
            )
