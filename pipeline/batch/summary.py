"""What an archive run reports: its progress as rows complete, its summary, and failure reasons grouped by
kind. Light (no torch, no Ray): the CLI's progress bar, the flows' artifacts and the Ray Job watcher use
these without loading the pipeline; the local run and the Ray Job watcher summarise alike."""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class RunProgress:
    total: int  # rows in the manifest
    already_done: int  # ok before this run started
    to_do: int  # rows this run will attempt
    ok: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    dashboard_url: str | None = None  # set when this run started a local Ray dashboard

    @property
    def processed(self) -> int:
        return self.ok + self.failed

    @property
    def images_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.processed / elapsed if elapsed > 0 else 0.0


@dataclass(frozen=True)
class RunSummary:
    total: int
    already_done: int
    ok: int
    failed: int
    skipped: int  # rows left unprocessed (limit) in the final results
    seconds: float
    images_per_second: float
    failures_by_reason: dict[str, int]
    results_uri: str


def summarize(
    progress: RunProgress, results: pa.Table, results_uri: str, failures: Counter[str] | None = None
) -> RunSummary:
    """A finished run's summary from its progress and its final ``results`` table. ``failures``: the
    reasons counted as rows failed (default: read from the failed rows of ``results``)."""
    status = results["status"]
    if failures is None:
        errors = results.filter(pc.equal(status, "failed"))["error"].to_pylist()
        failures = Counter(failure_reason(e) for e in errors)
    return RunSummary(
        total=progress.total,
        already_done=progress.already_done,
        ok=progress.ok,
        failed=progress.failed,
        skipped=int(pc.sum(pc.equal(status, "skipped")).as_py() or 0),
        seconds=time.monotonic() - progress.started,
        images_per_second=progress.images_per_second,
        failures_by_reason=dict(failures.most_common()),
        results_uri=results_uri,
    )


def failure_reason(error: str) -> str:
    """Group errors by kind: storage errors name the object first ("s3://b/k: not found; check ..." ->
    "not found"); otherwise the text before the first ':', ';' or '(' with numbers masked ("image is
    9000x9000 = 81,000,000 pixels, over ..." -> "image is NxN = N pixels, over the limit of N")."""
    if not error:
        return "unknown"
    text = _OBJECT_PREFIX.sub("", error, count=1)
    return _NUMBER.sub("N", re.split(r"[:;(]", text, maxsplit=1)[0]).strip() or "unknown"


_OBJECT_PREFIX = re.compile(r"^(s3://|file://|/).*?: ")
# Sizes and codes: 4,000,000 and 81.5 and 503; lone digits ("0-byte", "S3", "5 attempts") stay.
_NUMBER = re.compile(r"\d+(?:[,.]\d+)+|\d{2,}")
