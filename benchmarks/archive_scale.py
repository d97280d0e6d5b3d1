"""Does a restore run stay flat as the manifest grows? Driver memory and per-row time at 10k, 100k, 1M rows.

For each size N, in a fresh process (so its peak RSS is that size's alone): a local archive of N scans under
distinct paths (hard links to a few tiny JPEGs, so a million rows cost directory entries, not gigabytes), a
manifest of them, then ``restore_archive`` twice on the same Ray: with ``--limit 0`` (planning: manifest
read, output-prefix and collision checks, resume plan, results finalized for every row) and with
``--limit R`` (the same plus R rows restored by the shipped model). Per-row time is the difference over R.

    python benchmarks/archive_scale.py [--sizes 10000,100000,1000000] [--run-rows 1000]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import skimage.data
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.checkpoints import DEFAULT_CHECKPOINT
from pipeline.batch.config import PipelineConfig
from pipeline.batch.driver import RestoreJob, restore_archive

PER_FOLDER = 1000  # scans per folder, as archives store boxes of prints
LINKS_PER_FILE = 50_000


def make_archive(root: Path, rows: int) -> Path:
    """``rows`` scans at distinct paths (hard links to a few tiny JPEGs) and their manifest."""
    sources = root / "sources"
    sources.mkdir()
    photo = Image.fromarray(skimage.data.astronaut()).resize((24, 24))
    count = max(8, -(-rows // LINKS_PER_FILE))  # file systems cap links per inode (ext4: 65,000)
    for i in range(count):
        photo.rotate(360 * i / count).save(sources / f"{i}.jpg", quality=85)
    uris = []
    for i in range(rows):
        folder = root / "scans" / f"box{i // PER_FOLDER:05d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        path = folder / f"scan{i:07d}.jpg"
        os.link(sources / f"{i % count}.jpg", path)
        uris.append(str(path))
    manifest = root / "manifest.parquet"
    pq.write_table(pa.table({"uri": uris}), manifest)
    return manifest


def one_size(rows: int, run_rows: int) -> dict[str, float]:
    """Measure one manifest size in this process."""
    import ray

    with tempfile.TemporaryDirectory(prefix="patina-scale-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        manifest = make_archive(root, rows)
        build_s = time.perf_counter() - started
        ray.init(address="local", include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        cfg = PipelineConfig(batch_size=16)

        def run(limit: int, output: str) -> float:
            job = RestoreJob(str(manifest), str(root / output), str(DEFAULT_CHECKPOINT), cfg, limit=limit)
            started = time.perf_counter()
            summary = restore_archive(job)
            assert summary.ok == limit and summary.failed == 0, summary
            return time.perf_counter() - started

        plan_s = run(0, "planned")
        run_s = run(run_rows, "restored")
        ray.shutdown()
    return {
        "rows": rows,
        "archive_build_s": round(build_s, 1),
        "plan_and_finalize_s": round(plan_s, 2),
        "run_s": round(run_s, 2),
        "ms_per_restored_row": round((run_s - plan_s) / run_rows * 1000, 2),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--run-rows", type=int, default=1000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args.one, args.run_rows)))
        return
    print(f"{'rows':>9} {'plan+finalize s':>16} {'ms per restored row':>20} {'driver peak RSS MB':>19}")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    for rows in (int(s) for s in args.sizes.split(",")):
        command = [sys.executable, __file__, "--one", str(rows), "--run-rows", str(args.run_rows)]
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        if done.returncode:
            sys.exit(f"{rows} rows failed:\n{done.stderr[-3000:]}")
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(
            f"{r['rows']:>9,} {r['plan_and_finalize_s']:>16.2f} {r['ms_per_restored_row']:>20.2f} "
            f"{r['driver_peak_rss_mb']:>19,}"
        )


if __name__ == "__main__":
    main()
