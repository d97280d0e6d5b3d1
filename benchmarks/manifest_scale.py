"""How long resume planning takes, and how much memory it needs, for an archive-sized manifest.

Builds (in a temp dir) a manifest of N fake scans (s3://archive/scans/000123.tif) like build_manifest writes,
and results for half of them written the way workers write them: many parts via write_result_part. Then
times read_manifest, plan_remaining and finalize_results.

Memory: tracemalloc does not see Arrow's allocations, so each step runs in a fresh process and reports its
peak RSS (ru_maxrss) and Arrow memory-pool peak minus those of a process that only loaded the manifest.

    python benchmarks/manifest_scale.py [--rows 1000000] [--parts 100]
"""

from __future__ import annotations

import argparse
import math
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.manifest import finalize_results, plan_remaining, read_manifest, write_result_part
from pipeline.storage import Storage

MiB = 1024 * 1024


def make_manifest(rows: int, path: Path) -> None:
    """Columns as build_manifest writes them: uri, id (= uri), size, etag, mtime."""
    digits = pc.utf8_lpad(pa.array(np.arange(rows)).cast(pa.string()), max(6, len(str(rows - 1))), "0")
    uris = pc.binary_join_element_wise("s3://archive/scans/", digits, ".tif", "")
    table = pa.table(
        {
            "uri": uris,
            "id": uris,
            "size": pa.array(np.full(rows, 48_000_000, dtype=np.int64)),
            "etag": pc.binary_join_element_wise("d41d8cd98f00b204e9800998", digits, ""),
            "mtime": pa.array(np.full(rows, 1_600_000_000_000_000, dtype=np.int64)).cast(
                pa.timestamp("us", tz="UTC")
            ),
        }
    )
    pq.write_table(table, path, compression="zstd")


def write_done_parts(manifest: pa.Table, prefix: str, done: int, parts: int) -> None:
    """'ok' results for the first ``done`` rows, split into ``parts`` part files."""
    per_part = math.ceil(done / parts)
    for start in range(0, done, per_part):
        rows = manifest.slice(start, min(per_part, done - start))
        n = rows.num_rows
        part = pa.table(
            {
                "id": rows["id"],
                "uri": rows["uri"],
                "output_uri": pc.replace_substring(rows["uri"], "s3://archive/", "s3://restored/"),
                "status": pa.array(["ok"] * n),
                "error": pa.nulls(n, pa.string()),
                "width": pa.array(np.full(n, 4000, dtype=np.int32)),
                "height": pa.array(np.full(n, 3000, dtype=np.int32)),
                "input_etag": rows["etag"],
                "output_sha256": pa.array(["ab" * 32] * n),
                "model_id": pa.array(["patina-base@1"] * n),
                "elapsed_ms": pa.array(np.full(n, 850.0)),
                "defect_coverage": pa.array(np.full(n, 0.03, dtype=np.float32)),
            }
        )
        write_result_part(prefix, part, Storage())


def measure(step: str, manifest_uri: str, prefix: str) -> dict[str, float]:
    """Run one step in this (fresh) process; return seconds and peak memory figures in bytes."""
    storage = Storage()
    start = time.perf_counter()
    manifest = read_manifest(manifest_uri, storage)
    report = {"read_s": time.perf_counter() - start}
    start = time.perf_counter()
    if step == "plan":
        plan = plan_remaining(manifest, prefix, storage)
        report.update(total=plan.total, done=plan.done, todo=plan.todo.num_rows)
    elif step == "finalize":
        finalize_results(manifest, prefix, storage)
    report["seconds"] = time.perf_counter() - start
    rss_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    report["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * rss_unit
    report["arrow_peak"] = pa.default_memory_pool().max_memory()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=100)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="patina-bench-") as tmp:
        manifest_path, prefix = Path(tmp) / "manifest.parquet", str(Path(tmp) / "run")
        start = time.perf_counter()
        make_manifest(args.rows, manifest_path)
        write_done_parts(pq.read_table(manifest_path), prefix, args.rows // 2, args.parts)
        setup_s = time.perf_counter() - start
        print(f"setup: {args.rows:,}-row manifest and {args.parts} result parts in {setup_s:.1f} s")

        # A fresh process per step, so that each peak belongs to that step alone.
        runs = {}
        with ProcessPoolExecutor(1, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
            for step in ("load", "plan", "finalize"):
                runs[step] = pool.submit(measure, step, str(manifest_path), prefix).result()

    base, plan = runs["load"], runs["plan"]
    print(f"rows: {plan['total']:,} total, {plan['done']:,} done, {plan['todo']:,} todo")
    print(
        f"{'read_manifest':<17} {base['read_s']:6.2f} s  (peak RSS {base['peak_rss'] / MiB:,.0f} MiB, "
        f"Arrow peak {base['arrow_peak'] / MiB:,.0f} MiB: the baseline for the lines below)"
    )
    for step, name in (("plan", "plan_remaining"), ("finalize", "finalize_results")):
        rss = (runs[step]["peak_rss"] - base["peak_rss"]) / MiB
        arrow = (runs[step]["arrow_peak"] - base["arrow_peak"]) / MiB
        seconds = runs[step]["seconds"]
        print(f"{name:<17} {seconds:6.2f} s  (peak RSS +{rss:,.0f} MiB, Arrow peak +{arrow:,.0f} MiB)")


if __name__ == "__main__":
    main()
