"""The batch restoration job: manifest -> fetch -> decode -> restore (actors on GPUs) -> encode/write.
With ``--model era:NAME`` the same job renders period prints instead (``Stylizer`` in place of ``Restorer``).

``build_dataset`` and ``stages.read_images`` (which training shares, adding one RGB step) are the only places
that chain the stages and set batch sizes, GPUs and pool sizes (Ray's arguments for these change between
releases: one place, one diff). ``restore_archive`` plans the run once (skipping rows already ok), drives
the dataset, and records result parts as rows complete, so killing the driver at any moment loses at most
the rows of one unflushed part, which the next run simply redoes.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc
import ray

from pipeline.batch.config import RestoreJob
from pipeline.batch.fused import FusedActor
from pipeline.batch.identity import identify_model
from pipeline.batch.lease import RECORDED_SETTINGS, check_settings, take_lease
from pipeline.batch.outputs import check_output_prefix, plan_collisions
from pipeline.batch.restorer import Restorer
from pipeline.batch.stages import encode_and_write, read_images
from pipeline.batch.stylizer import ReferenceStylizer, Stylizer, era_name
from pipeline.batch.summary import RunProgress, RunSummary, failure_reason, summarize
from pipeline.manifest import (
    RESULTS_FILE,
    InputIdentity,
    conform_results,
    finalize_results,
    plan_remaining,
    read_manifest,
    refuse_other_models,
    write_result_part,
)
from pipeline.storage import Storage

GPU_BATCH_ROWS = 8  # most rows per GPU actor call (the whole batch is decoded in the actor's memory)


def restore_actors(num_gpus: int, num_cpus: int) -> int:
    """One actor per GPU. Without GPUs, one single-threaded actor per CPU, each running every stage of its
    rows (``FusedActor``): many single-threaded copies scale better than one multi-threaded one, and
    small images barely use a second thread at all."""
    return num_gpus if num_gpus else max(1, num_cpus)


def build_dataset(
    todo: pa.Table, job: RestoreJob, storage: Storage, model_id: str, num_gpus: int, num_cpus: int
) -> ray.data.Dataset:
    """Chain the stages over the rows still to do, with the model actors sized by ``restore_actors``.

    With GPUs: fetch and decode (``read_images``) and encode run in CPU tasks beside the GPU actors. Without
    GPUs there is nothing to overlap the codecs with, and passing pixels between stages is pure cost, so each
    actor runs all of them (pipeline/batch/fused.py)."""
    cfg = job.pipeline
    actors = restore_actors(num_gpus, num_cpus)
    # Each block is one batch of every CPU stage (batch_size=None below): blocks_of sized them.
    blocks = blocks_of(todo, cfg.batch_size, cfg.block_bytes)
    ds = ray.data.from_arrow(blocks)
    era = era_name(job.model)
    model_actor: type
    if era is not None:
        model_actor, model_kwargs = Stylizer, {"era_name": era}
    elif job.reference is not None:
        model_actor = ReferenceStylizer
        model_kwargs = {
            "checkpoint": job.model,
            "reference": job.reference,
            "storage": storage,
            "expected_id": model_id,
        }
    else:
        model_actor = Restorer
        model_kwargs = {
            "checkpoint": job.model,
            "storage": storage,
            "pipeline": cfg,
            "expected_id": model_id,
        }
    write = {
        "output_prefix": job.output,
        "output_format": cfg.output_format,
        "storage": storage,
        "model_id": model_id,
    }
    if not num_gpus:
        return ds.map_batches(
            FusedActor,
            fn_constructor_kwargs={
                "model_actor": model_actor,
                # One thread per actor (one actor per CPU), and never a GPU this actor did not reserve (a
                # GPU cluster scaled to zero when the job began).
                "model_kwargs": {**model_kwargs, "device": "cpu", "cpu_threads": 1},
                "max_pixels": cfg.max_pixels,
                "write": write,
            },
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            batch_size=None,
            batch_format="numpy",
        )
    ds = read_images(ds, storage, cfg.max_pixels)
    ds = ds.map_batches(
        model_actor,
        fn_constructor_kwargs=model_kwargs,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_gpus=1,
        # Ray wants a row count for GPU actors and then regroups blocks to it: the typical block's (1 row of
        # large scans, many small images), but at most GPU_BATCH_ROWS, so a mixed archive's batch never
        # gathers dozens of large scans that share the typical count of its thumbnails.
        batch_size=min(sorted(block.num_rows for block in blocks)[len(blocks) // 2] or 1, GPU_BATCH_ROWS),
        batch_format="numpy",
    )
    return ds.map_batches(encode_and_write, fn_kwargs=write, batch_size=None, batch_format="numpy")


def blocks_of(todo: pa.Table, max_rows: int, block_bytes: int) -> list[pa.Table]:
    """``todo``'s ``id`` and ``uri`` cut, in order, into blocks of at most ``max_rows`` rows whose input
    adds up to about ``block_bytes`` (the manifest's integer ``size`` column; a row of unknown size counts
    as ``block_bytes // 8``, so a manifest without sizes gets blocks of 8). A row larger than
    ``block_bytes`` is a block of its own."""
    rows = todo.select(["id", "uri"])
    unknown = max(1, block_bytes // 8)
    size = todo["size"] if "size" in todo.column_names else None
    if size is not None and pa.types.is_integer(size.type):
        sizes = pc.max_element_wise(size.fill_null(unknown), 0).to_pylist()
    else:
        sizes = [unknown] * todo.num_rows
    starts, total, count = [0], 0, 0
    for i, row_bytes in enumerate(sizes):
        if count and (count >= max_rows or total + row_bytes > block_bytes):
            starts.append(i)
            total, count = 0, 0
        total += row_bytes
        count += 1
    ends = [*starts[1:], todo.num_rows]
    return [rows.slice(start, end - start) for start, end in zip(starts, ends, strict=True)] or [rows]


def restore_archive(job: RestoreJob, on_progress: Callable[[RunProgress], None] | None = None) -> RunSummary:
    """Restore every manifest row not yet ok under ``job.output`` and write ``results.parquet`` there."""
    storage = Storage(job.storage)
    manifest = read_manifest(job.manifest, storage)
    check_output_prefix(manifest["uri"], job.output)
    model_id, described = identify_model(job.model, storage, job.reference)
    with take_lease(storage, job.output):  # no second run on this prefix while this one lives
        return _restore_leased(job, storage, manifest, model_id, described, on_progress)


def _restore_leased(
    job: RestoreJob,
    storage: Storage,
    manifest: pa.Table,
    model_id: str,
    described: dict,
    on_progress: Callable[[RunProgress], None] | None,
) -> RunSummary:
    plan = plan_remaining(manifest, job.output, storage)
    refuse_other_models(plan, job.output, model_id)
    check_settings(storage, job.output, {k: getattr(job.pipeline, k) for k in RECORDED_SETTINGS})
    todo = plan.todo.select([c for c in ("id", "uri", "size") if c in plan.todo.column_names])
    if job.limit is not None:
        todo = todo.slice(0, job.limit)
    progress = RunProgress(total=plan.total, already_done=plan.done, to_do=todo.num_rows)
    failures: Counter[str] = Counter()
    todo = _refuse_collisions(manifest, todo, job, storage, model_id, progress, failures)
    storage.remove_stale_temp_files(job.output)  # left by a run killed mid-write
    started_ray, progress.dashboard_url = _connect(job)
    try:
        if todo.num_rows:
            resources = ray.cluster_resources()
            num_gpus, num_cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
            ds = build_dataset(todo, job, storage, model_id, num_gpus, num_cpus)
            _drive(ds, job, storage, progress, failures, on_progress, InputIdentity.of(plan.todo))
    finally:
        if started_ray:
            ray.shutdown()
    final = finalize_results(manifest, job.output, storage, described)
    return summarize(progress, final, storage.join(job.output, RESULTS_FILE), failures)


def _refuse_collisions(
    manifest: pa.Table,
    todo: pa.Table,
    job: RestoreJob,
    storage: Storage,
    model_id: str,
    progress: RunProgress,
    failures: Counter[str],
) -> pa.Table:
    """Record as failed, before any work, the rows to do whose output would land on an original or on
    another row's output (judged over the whole manifest, done rows included); return the rest."""
    refused = plan_collisions(
        manifest["id"], manifest["uri"], job.output, job.pipeline.output_format, job.pipeline.masks
    )
    doomed = pc.is_in(todo["id"], value_set=pa.array(list(refused), pa.string()))
    rows = todo.filter(doomed)
    if rows.num_rows:
        n = rows.num_rows
        errors = [refused[row_id] for row_id in rows["id"].to_pylist()]
        write_result_part(
            job.output,
            pa.table(
                {
                    "id": rows["id"],
                    "uri": rows["uri"],
                    "output_uri": pa.nulls(n, pa.string()),
                    "status": pa.array(["failed"] * n),
                    "error": pa.array(errors, pa.string()),
                    "width": pa.array([0] * n, pa.int32()),
                    "height": pa.array([0] * n, pa.int32()),
                    "input_etag": pa.nulls(n, pa.string()),
                    "output_sha256": pa.nulls(n, pa.string()),
                    "model_id": pa.array([model_id] * n),
                    "elapsed_ms": pa.array([0.0] * n),
                    "defect_coverage": pa.array([0.0] * n, pa.float32()),
                    "pages": pa.array([0] * n, pa.int32()),
                    "tone": pa.nulls(n, pa.string()),
                }
            ),
            storage,
        )
        progress.failed += n
        failures.update(failure_reason(error) for error in errors)
    return todo.filter(pc.invert(doomed))


def _connect(job: RestoreJob) -> tuple[bool, str | None]:
    """Join the given cluster, or start Ray locally. Returns (whether this call started Ray, so a job never
    shuts down a cluster or a caller's Ray it did not start; the local dashboard's URL if one was started)."""
    if ray.is_initialized():
        return False, None
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False  # the CLI draws its own progress
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # Ray Data then warns on every run that its bars are off: that is what we asked for.
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    # A local Ray turns token authentication on by itself (the secure default, kept) and warns about it
    # on every start; that module logs nothing else at warning level.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # A cluster only when asked for (--ray-address, or RAY_ADDRESS as Ray Jobs set it); otherwise a new
    # local Ray of our own: a bare ray.init() would join any cluster started on this machine, and the job
    # would run somewhere the user did not ask for.
    address = job.ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        return False, None
    context = ray.init(
        address="local", include_dashboard=job.dashboard, log_to_driver=False, logging_level=logging.WARNING
    )
    return True, (f"http://{context.dashboard_url}" if job.dashboard and context.dashboard_url else None)


def _drive(
    ds: ray.data.Dataset,
    job: RestoreJob,
    storage: Storage,
    progress: RunProgress,
    failures: Counter[str],
    on_progress: Callable[[RunProgress], None] | None,
    inputs: InputIdentity | None = None,
) -> None:
    pending: list[pa.Table] = []
    last_flush = time.monotonic()
    for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        rows = conform_results(batch)
        pending.append(rows if inputs is None else inputs.attach(rows))
        ok = int(pc.sum(pc.equal(rows["status"], "ok")).as_py() or 0)
        progress.ok += ok
        progress.failed += rows.num_rows - ok
        for error in rows.filter(pc.equal(rows["status"], "failed"))["error"].to_pylist():
            failures[failure_reason(error)] += 1
        if (
            sum(t.num_rows for t in pending) >= job.flush_rows
            or time.monotonic() - last_flush > job.flush_seconds
        ):
            write_result_part(job.output, pa.concat_tables(pending), storage)
            pending, last_flush = [], time.monotonic()
        if on_progress:
            on_progress(progress)
    if pending:
        write_result_part(job.output, pa.concat_tables(pending), storage)
