"""The one typed config of an archive run: ``RestoreJob`` (what to run, where, with which model) nesting
``PipelineConfig`` (tiling, batching, limits, output format) and the storage options. Checked when built,
so a bad value is a one-line error before any work starts; serialised whole to a Ray Job. ``archive_job``
is the one place a job is built from a user's options (the `patina` commands and the Prefect flows).
No torch here: the command line reads its defaults from these classes."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from model.files import DEFAULT_CHECKPOINT, DEFAULT_RETRO_CHECKPOINT
from pipeline.batch.outputs import OUTPUT_FORMATS
from pipeline.storage import StorageOptions

FILLS = ("mask", "model", "telea")
TONES = ("keep", "auto")  # --tone: keep the repair's tone, or model/tone's auto correction


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
    # Write each defect mask beside its output, as OUTPUT.mask.png (0 = kept, 255 = repaired).
    masks: bool = False
    # How detected defects are filled (docs/MODEL.md measures each): "mask" (the generator's fill on the
    # detected pixels and a 1 px rim, every other pixel exactly the input's: an undamaged photo is left
    # alone), "model" (the generator's whole output: also denoises, and moves clean photos ~37 dB) or
    # "telea" (the whole output, with OpenCV Telea inpainting of the detected mask).
    fill: str = "mask"
    # Global tone (docs/MODEL.md, "Tone"): "keep" (default: the repair leaves fading and casts as they are)
    # or "auto" (fading, yellowing and dye fade read from the whole image and undone through one LUT, at
    # most ``tone_strength`` of the way; the correction is recorded in the result row's ``tone``).
    tone: str = "keep"
    tone_strength: float = 1.0

    def __post_init__(self) -> None:
        if self.overlap < 0 or self.tile <= self.overlap:
            raise ValueError(f"tile ({self.tile}) must be larger than overlap ({self.overlap}), overlap >= 0")
        for name in ("tiles_per_batch", "batch_size", "max_pixels", "block_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.fill not in FILLS:
            raise ValueError(f"unknown fill {self.fill!r}; choose one of {', '.join(FILLS)}")
        if self.tone not in TONES:
            raise ValueError(f"unknown tone {self.tone!r}; choose one of {', '.join(TONES)}")
        if not (isinstance(self.tone_strength, int | float) and 0 <= self.tone_strength <= 1):
            raise ValueError(f"--tone-strength must lie between 0 and 1, got {self.tone_strength!r}")
        if self.output_format not in OUTPUT_FORMATS:
            raise ValueError(
                f"unknown output format {self.output_format!r}; choose one of {', '.join(OUTPUT_FORMATS)}"
            )


@dataclass(frozen=True)
class RestoreJob:
    """Everything one archive run needs (restore, an era, or a reference's look); built by ``archive_job``."""

    manifest: str
    output: str
    model: str = str(DEFAULT_CHECKPOINT)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    storage: StorageOptions = field(default_factory=StorageOptions)
    ray_address: str | None = None  # None: start Ray locally in-process
    limit: int | None = None  # restore at most this many of the remaining rows
    flush_rows: int = 64  # result rows per part file: the most a killed driver can lose
    flush_seconds: float = 15.0
    dashboard: bool = False
    reference: str | None = None  # with a retro checkpoint as model: the old photo whose look is given to all

    def __post_init__(self) -> None:
        # A job from JSON (--job) is checked like one from options: types too, so "5" is not a limit.
        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if self.limit is not None and not (whole(self.limit) and self.limit >= 0):
            raise ValueError(f"--limit must be a whole number, 0 or more; got {self.limit!r}")
        if not (whole(self.flush_rows) and self.flush_rows >= 1):
            raise ValueError(f"--flush-rows must be a whole number, 1 or more; got {self.flush_rows!r}")
        if not (isinstance(self.flush_seconds, int | float) and self.flush_seconds > 0):
            raise ValueError(f"flush_seconds must be a positive number; got {self.flush_seconds!r}")

    def to_json(self) -> str:
        """The whole job as JSON: what a Ray Job's `patina restore --job` receives, nested configs and all,
        so nothing is lost or re-defaulted on the way to the cluster."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RestoreJob:
        """``to_json``'s inverse; a malformed or unknown field is a one-line ValueError."""
        try:
            fields = json.loads(text)
            return cls(
                **{
                    **fields,
                    "pipeline": PipelineConfig(**(fields.get("pipeline") or {})),
                    "storage": StorageOptions(**(fields.get("storage") or {})),
                }
            )
        except (json.JSONDecodeError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not a restore job: {exc}") from None


ERA_SCHEME = "era:"  # a job's model ``era:NAME`` selects an era preset instead of a checkpoint


def archive_job(
    manifest: str,
    output: str,
    *,
    model: str | None = None,
    era: str | None = None,
    reference: str | None = None,
    endpoint_url: str | None = None,
    outage_patience_s: float | None = None,
    **options: Any,
) -> RestoreJob:
    """A restore run (``model``: a restoration checkpoint, default the shipped one), an era run (``era``), or
    a reference run (``reference`` with ``model`` a retro checkpoint, default the shipped one). ``options``
    are ``RestoreJob`` fields (ray_address, limit, flush_rows, dashboard) and ``PipelineConfig`` fields;
    None keeps the default, so callers pass their options through unset."""
    if era is not None and reference is not None:
        raise ValueError("give exactly one of --era NAME or --reference OLD_PHOTO, not both")
    if era is not None and model is not None:
        raise ValueError("--model is the retro checkpoint for --reference; an era needs none")
    if era is not None:
        model = f"{ERA_SCHEME}{era}"
    else:
        model = model or str(DEFAULT_RETRO_CHECKPOINT if reference is not None else DEFAULT_CHECKPOINT)
    given = {k: v for k, v in options.items() if v is not None}
    pipeline_fields = {f.name for f in dataclasses.fields(PipelineConfig)}
    unknown = set(given) - pipeline_fields - {f.name for f in dataclasses.fields(RestoreJob)}
    if unknown:
        raise TypeError(f"archive_job() got unknown options {sorted(unknown)}")
    storage = {"endpoint_url": endpoint_url, "outage_patience_s": outage_patience_s}
    return RestoreJob(
        manifest=manifest,
        output=output,
        model=model,
        reference=reference,
        pipeline=PipelineConfig(**{k: v for k, v in given.items() if k in pipeline_fields}),
        storage=StorageOptions(**{k: v for k, v in storage.items() if v is not None}),
        **{k: v for k, v in given.items() if k not in pipeline_fields},
    )


def stylize_job(
    manifest: str, output: str, *, era: str | None = None, reference: str | None = None, **options: Any
) -> RestoreJob:
    """``archive_job`` for a period look: exactly one of ``era`` or ``reference`` (restores have neither)."""
    if era is None and reference is None:
        raise ValueError("give exactly one of --era NAME or --reference OLD_PHOTO")
    return archive_job(manifest, output, era=era, reference=reference, **options)
