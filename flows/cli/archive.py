"""`patina manifest build`, `restore`, `stylize`, `demo`: archive-scale jobs (`patina serve`, which schedules
them as Prefect flows, is in serving.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from flows.cli.base import app, console, db, manifest_app, user_errors
from pipeline.batch.config import PipelineConfig, RestoreJob, archive_job, stylize_job
from pipeline.batch.outputs import OUTPUT_FORMATS
from pipeline.storage import StorageOptions

FORMAT_HELP = "same | " + " | ".join(f for f in OUTPUT_FORMATS if f != "same")
MAX_PIXELS_HELP = "Refuse images with more pixels (decompression bombs)."
FLUSH_HELP = "Result rows per results part: the most a killed run redoes."
TONE_HELP = (
    "keep (default: fading and casts stay) or auto (lift fading, yellowing, dye fade; recorded per row)."
)
TONE_STRENGTH_HELP = "With --tone auto: undo at most this fraction (0-1) of the estimated ageing."
PATIENCE_HELP = "Seconds an S3 outage is waited out (backoff, jitter) before its rows fail."


@manifest_app.command("build")
@user_errors
def manifest_build(
    source: str = typer.Argument(..., help="s3://bucket/prefix or a local folder to list."),
    out: str = typer.Argument(
        ..., help="Manifest to write (local path or s3:// URI), e.g. manifest.parquet."
    ),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
) -> None:
    """List an S3 prefix or a folder (streaming, bounded memory) into a Parquet manifest of its images."""
    from pipeline.manifest import build_manifest
    from pipeline.storage import Storage, StorageOptions

    left_out: dict[str, int] = {}
    count = build_manifest(source, out, Storage(StorageOptions(endpoint_url=endpoint_url)), left_out=left_out)
    console.print(f"wrote {count:,} images to {out}")
    if left_out:
        kinds = ", ".join(f"{n:,} {ext}" for ext, n in sorted(left_out.items()))
        console.print(
            f"left out {sum(left_out.values()):,} photos in formats patina does not restore: {kinds}"
        )


@app.command()
@user_errors
def restore(
    ctx: typer.Context,
    manifest: str | None = typer.Option(
        None, help="Input manifest (Parquet with a `uri` column), local or s3://. Required."
    ),
    output: str | None = typer.Option(
        None, help="Output prefix (local folder or s3://bucket/prefix), outside the input. Required."
    ),
    model: str | None = typer.Option(None, help="Checkpoint (.safetensors); default: the shipped model."),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster (ray://host:10001 or auto); default: local."
    ),
    batch_size: int = typer.Option(
        PipelineConfig.batch_size,
        help="Most images per Ray Data batch (fewer when the manifest's sizes add up to 1 MB).",
    ),
    tile: int = typer.Option(PipelineConfig.tile, help="Tile size in pixels for large scans."),
    overlap: int = typer.Option(PipelineConfig.overlap, help="Tile overlap in pixels (blended, no seams)."),
    tiles_per_batch: int = typer.Option(
        PipelineConfig.tiles_per_batch, help="Tiles per generator forward (bounds GPU memory)."
    ),
    output_format: str = typer.Option(PipelineConfig.output_format, "--format", help=FORMAT_HELP),
    masks: bool = typer.Option(
        PipelineConfig.masks,
        help="Write each defect mask beside its output (OUTPUT.mask.png, 255 = repaired).",
    ),
    fill: str = typer.Option(
        PipelineConfig.fill,
        help="mask (only detected defects change; default), model (the whole output) or telea.",
    ),
    tone: str = typer.Option(PipelineConfig.tone, help=TONE_HELP),
    tone_strength: float = typer.Option(PipelineConfig.tone_strength, help=TONE_STRENGTH_HELP),
    max_pixels: int = typer.Option(PipelineConfig.max_pixels, help=MAX_PIXELS_HELP),
    limit: int | None = typer.Option(None, help="Restore at most N of the remaining rows."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
    dashboard: bool = typer.Option(False, help="Start the Ray dashboard with local Ray."),
    flush_rows: int = typer.Option(RestoreJob.flush_rows, help=FLUSH_HELP),
    outage_patience: float = typer.Option(StorageOptions.outage_patience_s, help=PATIENCE_HELP),
    job_json: str | None = typer.Option(
        None, "--job", help="A whole job as JSON (what a Ray Job runs); no other option may be given."
    ),
) -> None:
    """Restore every image of a manifest not yet done under OUTPUT; re-running resumes."""
    if job_json is not None:
        # By name: typer 0.29 carries its own copy of click, whose ParameterSource is not click's.
        given = [
            "--" + name.replace("_", "-")
            for name in ctx.params
            if name != "job_json" and getattr(ctx.get_parameter_source(name), "name", "") != "DEFAULT"
        ]
        if given:  # an option beside --job would be silently ignored
            raise ValueError(f"--job carries the whole job; drop {', '.join(given)}")
        _run_archive(RestoreJob.from_json(job_json), "restored")
        return
    if not manifest or not output:
        raise ValueError("--manifest and --output are required (or --job)")
    job = archive_job(
        manifest,
        output,
        model=model,
        endpoint_url=endpoint_url,
        outage_patience_s=outage_patience,
        tile=tile,
        overlap=overlap,
        tiles_per_batch=tiles_per_batch,
        batch_size=batch_size,
        max_pixels=max_pixels,
        output_format=output_format,
        masks=masks,
        fill=fill,
        tone=tone,
        tone_strength=tone_strength,
        ray_address=ray_address,
        limit=limit,
        flush_rows=flush_rows,
        dashboard=dashboard,
    )
    _run_archive(job, "restored")


def _run_archive(job: Any, done: str) -> None:
    """Run an archive job (restore or stylize) with a progress bar and print its summary."""
    from flows.cli.progress import progress_reporter
    from pipeline.batch.driver import restore_archive

    with progress_reporter(console) as report:
        summary = restore_archive(job, on_progress=report)
    console.print(
        f"{summary.ok:,} {done}, {summary.failed:,} failed, {summary.already_done:,} already done, "
        f"{summary.skipped:,} left (of {summary.total:,}) in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.2f} images/s)"
    )
    for reason, count in summary.failures_by_reason.items():
        console.print(f"  failed: {count:,} x {reason}")
    console.print(f"results: {summary.results_uri}")


@app.command()
@user_errors
def stylize(
    manifest: str = typer.Option(..., help="Input manifest (Parquet with a `uri` column), local or s3://."),
    output: str = typer.Option(
        ..., help="Output prefix (local folder or s3://bucket/prefix), outside the input."
    ),
    era: str | None = typer.Option(None, help="Era preset (patina retro eras)."),
    reference: str | None = typer.Option(
        None, help="An old photo (local or s3://) whose look every image gets, read by the retro model."
    ),
    model: str | None = typer.Option(
        None, help="Retro checkpoint for --reference (local or s3://); default: the shipped one."
    ),
    ray_address: str | None = typer.Option(
        None, help="Ray cluster (ray://host:10001 or auto); default: local."
    ),
    batch_size: int = typer.Option(
        PipelineConfig.batch_size,
        help="Most images per Ray Data batch (fewer when the manifest's sizes add up to 1 MB).",
    ),
    output_format: str = typer.Option(PipelineConfig.output_format, "--format", help=FORMAT_HELP),
    max_pixels: int = typer.Option(PipelineConfig.max_pixels, help=MAX_PIXELS_HELP),
    limit: int | None = typer.Option(None, help="Render at most N of the remaining rows."),
    endpoint_url: str | None = typer.Option(None, help="S3 endpoint (MinIO, Ceph); default AWS."),
    flush_rows: int = typer.Option(RestoreJob.flush_rows, help=FLUSH_HELP),
    outage_patience: float = typer.Option(StorageOptions.outage_patience_s, help=PATIENCE_HELP),
) -> None:
    """Give every image of a manifest a period look under OUTPUT: an era preset's print (--era), or the look
    of a real old photo (--reference). The restore job's pipeline (resumable, never writes outside OUTPUT);
    the era or reference is recorded with every result row and in results.parquet's metadata."""
    job = stylize_job(
        manifest,
        output,
        model=model,
        era=era,
        reference=reference,
        endpoint_url=endpoint_url,
        outage_patience_s=outage_patience,
        batch_size=batch_size,
        max_pixels=max_pixels,
        output_format=output_format,
        ray_address=ray_address,
        limit=limit,
        flush_rows=flush_rows,
    )
    _run_archive(job, "stylized")


@app.command()
@user_errors
def demo(
    output: Path = typer.Option(Path("demo-output"), help="Folder for the demo's archive and results."),
    model: str | None = typer.Option(None, help="Checkpoint to use instead of the shipped default."),
    seed: int = typer.Option(0, help="Seed for the synthetic degradations."),
) -> None:
    """Build a small degraded archive from scikit-image's sample photos, restore it with the batch pipeline
    (local Ray, local folders) and write gallery.html."""
    from pipeline.tools.demo import run_demo

    summary, scores, description, page = run_demo(output, model, seed=seed)
    table = Table(title=f"patina demo: {description}")
    for column in ("image", "severity", "PSNR dB in -> out", "SSIM in -> out"):
        table.add_column(column)
    for s in scores:
        table.add_row(
            s.name,
            s.severity,
            f"{db(s.psnr_degraded)} -> {db(s.psnr_restored)}",
            f"{s.ssim_degraded:.3f} -> {s.ssim_restored:.3f}",
        )
    console.print(table)
    console.print(f"{summary.ok} restored, {summary.failed} failed; results manifest: {summary.results_uri}")
    console.print(f"Open {page} to compare before and after (sortable by defect coverage).")
