"""What a finished restoration run shows in the Prefect UI: a summary table and a before/after report.

Thumbnails are small JPEGs embedded as data URIs, so the report stays readable after presigned links would
have expired and needs no access to the bucket from the browser.
"""

from __future__ import annotations

import base64
import html
import io
import re

import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image

from pipeline.batch.summary import RunSummary
from pipeline.storage import Storage
from pipeline.tools.gallery import preview

THUMB_PX = 160
MAX_PAIRS = 4
MAX_FAILED = 10
MAX_THUMB_SOURCE_BYTES = 64 * 2**20  # bigger scans are not decoded in the flow's process for a preview


def summary_table(summary: RunSummary) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"metric": "restored (this run)", "value": summary.ok},
        {"metric": "failed (this run)", "value": summary.failed},
        {"metric": "already done before", "value": summary.already_done},
        {"metric": "skipped (left for a later run)", "value": summary.skipped},
        {"metric": "rows in manifest", "value": summary.total},
        {"metric": "images/s", "value": round(summary.images_per_second, 3)},
        {"metric": "seconds", "value": round(summary.seconds, 1)},
    ]
    rows += [{"metric": f"failed: {reason}", "value": n} for reason, n in summary.failures_by_reason.items()]
    return rows


def summary_markdown(summary: RunSummary, storage: Storage) -> str:
    results = pq.read_table(io.BytesIO(storage.read_bytes(summary.results_uri)))
    lines = [
        "# Restoration report",
        "",
        f"{summary.ok:,} restored and {summary.failed:,} failed in this run; {summary.already_done:,} were "
        f"already done, {summary.skipped:,} left; {summary.images_per_second:.2f} images/s.",
        f"Results manifest: {_code(summary.results_uri)}",
        "",
        "## Before and after",
        "",
        "| before | after | image |",
        "| --- | --- | --- |",
    ]
    ok = results.filter(pc.equal(results["status"], "ok")).slice(0, MAX_PAIRS)
    for uri, output_uri in zip(ok["uri"].to_pylist(), ok["output_uri"].to_pylist(), strict=True):
        lines.append(f"| {_thumb(storage, uri)} | {_thumb(storage, output_uri)} | {_code(uri)} |")
    failed = results.filter(pc.equal(results["status"], "failed"))
    lines += ["", f"## Failed rows ({failed.num_rows:,})", ""]
    if failed.num_rows:
        lines += ["| image | error |", "| --- | --- |"]
        for uri, error in zip(
            failed["uri"].to_pylist()[:MAX_FAILED], failed["error"].to_pylist()[:MAX_FAILED], strict=True
        ):
            lines.append(f"| {_code(uri)} | {_cell(error)} |")
        if failed.num_rows > MAX_FAILED:
            lines.append(f"\n... and {failed.num_rows - MAX_FAILED:,} more in the results manifest.")
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def _thumb(storage: Storage, uri: str) -> str:
    try:
        if storage.info(uri).size > MAX_THUMB_SOURCE_BYTES:
            return "(too large to preview)"
        with Image.open(io.BytesIO(storage.read_bytes(uri))) as image:
            thumb = preview(image, THUMB_PX)
        buffer = io.BytesIO()
        thumb.save(buffer, format="JPEG", quality=80)
    except Exception as exc:  # a report is never worth failing a finished run over
        return f"(unavailable: {_cell(str(exc))})"
    return f"![thumbnail](data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode()})"


def _cell(text: str | None) -> str:
    """Plain text in a table cell: no markup, HTML or cell break can come from a file name or an error."""
    plain = html.escape((text or "").replace("\n", " ")[:300], quote=False)
    return re.sub(r"([\\`*_\[\]#|~])", r"\\\1", plain)


def _code(text: str) -> str:
    """``text`` as a code span whatever backticks it holds (CommonMark: a longer fence), one line, with
    ``|`` escaped so a table cell ends only where the table says."""
    flat = text.replace("\n", " ").replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    return f"{fence} {flat} {fence}"
