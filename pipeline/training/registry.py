"""A model registry on S3 or local disk: which generator is the current one, and how one replaces it.

Layout under REGISTRY (s3://bucket/models or a folder):
  versions/<model id>.safetensors   every model ever promoted, immutable (ids hash the file's bytes)
  latest.safetensors                a copy of the current model
  latest.json                       the current model's id, its versions/ uri, scores, when it was promoted
  history/<time>-<id>.json          one object per promotion decision, promoted or not

Restore with the immutable ``version_uri`` that latest.json names: a run pinned to latest.safetensors fails
its remaining rows if a promotion replaces the file mid-run (the restorer checks the model id).

A candidate is promoted only when it beats the current model on the same fixed validation set, scored in the
same call, so a registry never moves to a worse model and stored numbers from other val sets never decide.
Nothing is deleted: the previous model stays under versions/.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model.checkpoints import load_generator
from model.formats import IMAGE_EXTENSIONS
from model.restoration.validation import Scores, evaluate
from pipeline.storage import Storage, parse_uri

LATEST_MODEL = "latest.safetensors"
LATEST_INFO = "latest.json"
# Promotion compares mean PSNR over the degraded sets; the clean set's near-infinite PSNR would swamp it.
PROMOTION_SETS = ("light", "medium", "heavy", "published")


@dataclass(frozen=True)
class Decision:
    promoted: bool
    candidate_id: str
    current_id: str | None
    candidate_psnr: float  # mean over PROMOTION_SETS of the model's val PSNR
    current_psnr: float | None
    reason: str
    model_uri: str  # where the candidate now lives (versions/...) when promoted, else the candidate's uri
    scores: dict[str, dict[str, Scores]]  # the candidate's table: degraded / baseline / model per severity


def mean_psnr(scores: dict[str, Scores]) -> float:
    return float(np.mean([s.psnr for s in scores.values()]))


def score_model(
    uri: str,
    val: str,
    storage: Storage,
    limit: int | None = None,
    baseline: bool = False,
    max_side: int | None = None,
) -> tuple[str, dict[str, dict[str, Scores]]]:
    """(model id, ``{"degraded" | "baseline" | "model": {severity: Scores}}``) of a checkpoint (S3 or disk) on
    the clean photos in ``val`` (a folder or an s3:// prefix), centre-cropped to ``max_side`` if given."""
    generator, _, model_id = load_generator(uri, storage)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(val)
        if parse_uri(val).scheme == "s3":
            folder = Path(tmp) / "val"
            folder.mkdir()
            storage.download_folder(val, str(folder), IMAGE_EXTENSIONS)
        scores = evaluate(folder, generator, baseline, limit=limit, max_side=max_side, sets=PROMOTION_SETS)
        return model_id, scores


def current_model(registry: str, storage: Storage) -> str | None:
    uri = storage.join(registry, LATEST_MODEL)
    return uri if storage.exists(uri) else None


def decide(
    candidate_uri: str,
    registry: str,
    val: str,
    storage: Storage,
    limit: int | None = None,
    baseline: bool = True,
    max_side: int | None = None,
) -> Decision:
    """Score the candidate (and the classical baseline, for the record) and the registry's current model on
    ``val``; promote the candidate if it is better (higher mean PSNR over medium and heavy; a tie keeps the
    current model)."""
    candidate_id, candidate = score_model(candidate_uri, val, storage, limit, baseline, max_side)
    new = mean_psnr(candidate["model"])
    current_uri = current_model(registry, storage)
    if current_uri is None:
        reason = "the registry has no model yet"
        decision = Decision(True, candidate_id, None, new, None, reason, candidate_uri, candidate)
    else:
        current_id, current = score_model(current_uri, val, storage, limit, max_side=max_side)
        old = mean_psnr(current["model"])
        better = new > old
        reason = f"val PSNR {new:.2f} dB {'>' if better else '<='} current {old:.2f} dB"
        decision = Decision(better, candidate_id, current_id, new, old, reason, candidate_uri, candidate)
    if decision.promoted:
        decision = _promote(decision, candidate_uri, registry, storage, candidate)
    _append_history(registry, storage, decision)
    return decision


def _promote(decision: Decision, candidate_uri: str, registry: str, storage: Storage, scores) -> Decision:
    data = storage.read_bytes(candidate_uri)
    version_uri = storage.join(registry, "versions", f"{decision.candidate_id}.safetensors")
    if not storage.exists(version_uri):  # ids hash the bytes: an existing version is this very file
        storage.write_bytes(version_uri, data)
    # latest.safetensors then latest.json, each written atomically: readers of latest.json always find the
    # model it names under versions/.
    storage.write_bytes(storage.join(registry, LATEST_MODEL), data)
    info = {
        "model_id": decision.candidate_id,
        "version_uri": version_uri,
        "source_uri": candidate_uri,
        "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "val": {m: {s: asdict(v) for s, v in by.items()} for m, by in scores.items()},
        "replaced": decision.current_id,
    }
    storage.write_bytes(storage.join(registry, LATEST_INFO), json.dumps(info, indent=2).encode())
    return dataclasses.replace(decision, model_uri=version_uri)


def _append_history(registry: str, storage: Storage, decision: Decision) -> None:
    """One object per decision, never rewritten, so concurrent decisions cannot lose each other's record."""
    at = datetime.now(UTC)
    line = {"at": at.isoformat(timespec="seconds"), **asdict(decision)}
    line.pop("scores")  # latest.json holds the promoted model's table; history stays one short record each
    name = f"{at.strftime('%Y%m%dT%H%M%S%fZ')}-{decision.candidate_id}.json"
    storage.write_bytes(storage.join(registry, "history", name), json.dumps(line).encode())
