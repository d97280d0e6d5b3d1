"""The real Ray Data pipeline on a real S3 endpoint (moto's HTTP server): 30+ images, bad rows among them."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
import torch
from PIL import Image, ImageCms

from model.checkpoints import DEFAULT_CHECKPOINT
from pipeline.batch.config import PipelineConfig
from pipeline.batch.driver import RestoreJob, restore_archive
from pipeline.manifest import read_results
from pipeline.storage import StorageOptions

MAX_PIXELS = 100_000


def _jpeg_with_metadata(image: Image.Image) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "patina test camera"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90, exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300))
    return buf.getvalue()


def _encode(image: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def archive(s3_server, photo):
    """Upload 36 rows' worth of archive to a bucket; return (bucket, manifest uri, expectations)."""
    bucket = s3_server.create_bucket()
    client = s3_server.client()
    base = photo.resize((80, 64))
    good: dict[str, tuple[str, tuple[int, int]]] = {}  # key -> (mode written back, displayed size)
    for i in range(24):
        key = f"scans/box{i % 3}/print{i:03d}.jpg"
        client.put_object(Bucket=bucket, Key=key, Body=_encode(base.rotate(i * 7), "JPEG"))
        good[key] = ("RGB", (80, 64))
    client.put_object(Bucket=bucket, Key="scans/meta.jpg", Body=_jpeg_with_metadata(base))
    good["scans/meta.jpg"] = ("RGB", (64, 80))  # orientation 6 applied: width and height swap
    specials = {
        "scans/gray.png": base.convert("L"),
        "scans/alpha.png": base.convert("RGBA"),
        "scans/cmyk.tif": base.convert("CMYK"),
        "scans/deep.png": Image.fromarray(np.asarray(base.convert("L")).astype("<u2") * 257),
    }
    for key, image in specials.items():
        client.put_object(
            Bucket=bucket, Key=key, Body=_encode(image, "TIFF" if key.endswith("tif") else "PNG")
        )
        good[key] = (image.mode, image.size)
    jpeg = _encode(base, "JPEG")
    bad = {
        "scans/missing.jpg": "not found",
        "scans/empty.jpg": "0-byte",
        "scans/truncated.jpg": "truncated or corrupt",
        "scans/notes.jpg": "not an image",
        "scans/huge.png": "over the limit",
    }
    client.put_object(Bucket=bucket, Key="scans/empty.jpg", Body=b"")
    client.put_object(Bucket=bucket, Key="scans/truncated.jpg", Body=jpeg[: len(jpeg) // 2])
    client.put_object(Bucket=bucket, Key="scans/notes.jpg", Body=b"shelf 4, box 2: family portraits\n")
    client.put_object(
        Bucket=bucket, Key="scans/huge.png", Body=_encode(Image.new("L", (400, 400), 128), "PNG")
    )
    keys = [*good, *bad]
    manifest = pa.table(
        {
            "uri": [f"s3://{bucket}/{k}" for k in keys],
            "collection": [f"collection-{i % 4}" for i in range(len(keys))],
        }
    )
    buf = io.BytesIO()
    pq.write_table(manifest, buf)
    client.put_object(Bucket=bucket, Key="manifests/archive.parquet", Body=buf.getvalue())
    return bucket, f"s3://{bucket}/manifests/archive.parquet", good, bad


def test_restores_s3_archive_with_bad_rows(s3_server, ray_local, archive, tiny_checkpoint):
    bucket, manifest, good, bad = archive
    checkpoint = tiny_checkpoint
    storage = s3_server.storage()
    storage.write_bytes(f"s3://{bucket}/models/tiny.safetensors", checkpoint.read_bytes())
    output = f"s3://{bucket}/restored/run1"
    job = RestoreJob(
        manifest=manifest,
        output=output,
        model=f"s3://{bucket}/models/tiny.safetensors",
        pipeline=PipelineConfig(tile=48, overlap=8, tiles_per_batch=4, batch_size=4, max_pixels=MAX_PIXELS),
        storage=StorageOptions(endpoint_url=s3_server.endpoint_url),
        flush_rows=8,
    )
    summary = restore_archive(job)

    assert (summary.total, summary.ok, summary.failed, summary.skipped) == (
        len(good) + len(bad),
        len(good),
        len(bad),
        0,
    )
    results = pq.read_table(io.BytesIO(storage.read_bytes(f"{output}/results.parquet")))
    rows = {r["uri"].split(f"s3://{bucket}/", 1)[1]: r for r in results.to_pylist()}
    assert results.num_rows == len(rows) == len(good) + len(bad)  # each input exactly once
    assert set(results["collection"].to_pylist()) == {f"collection-{i}" for i in range(4)}  # extras carried

    for key, (mode, size) in good.items():
        row = rows[key]
        assert row["status"] == "ok" and row["error"] is None, row
        assert row["output_uri"] == f"{output}/{bucket}/{key}"
        assert row["model_id"].startswith("tiny-step")
        assert 0 <= row["defect_coverage"] <= 1 and row["elapsed_ms"] > 0
        assert len(row["input_etag"]) == 64 and len(row["output_sha256"]) == 64
        restored = Image.open(io.BytesIO(storage.read_bytes(row["output_uri"])))
        restored.load()  # decodes fully
        assert restored.mode == mode and restored.size == size == (row["width"], row["height"]), key
    original = Image.open(io.BytesIO(storage.read_bytes(f"s3://{bucket}/scans/box0/print000.jpg")))
    restored = Image.open(io.BytesIO(storage.read_bytes(rows["scans/box0/print000.jpg"]["output_uri"])))
    assert np.abs(np.asarray(restored, np.int16) - np.asarray(original, np.int16)).mean() > 1  # the model ran

    meta = Image.open(io.BytesIO(storage.read_bytes(rows["scans/meta.jpg"]["output_uri"])))
    assert meta.getexif()[0x010F] == "patina test camera" and meta.getexif().get(0x0112, 1) == 1
    assert meta.info["icc_profile"] and tuple(round(d) for d in meta.info["dpi"]) == (300, 300)
    deep = np.asarray(Image.open(io.BytesIO(storage.read_bytes(rows["scans/deep.png"]["output_uri"]))))
    assert deep.dtype.itemsize == 2 and deep.max() > 255  # 16-bit stays 16-bit
    alpha_in = np.asarray(Image.open(io.BytesIO(storage.read_bytes(f"s3://{bucket}/scans/alpha.png"))))
    alpha_out = np.asarray(Image.open(io.BytesIO(storage.read_bytes(rows["scans/alpha.png"]["output_uri"]))))
    assert np.array_equal(alpha_in[..., 3], alpha_out[..., 3])

    for key, reason in bad.items():
        row = rows[key]
        assert row["status"] == "failed" and reason in row["error"] and "\n" not in row["error"], row
        assert not storage.exists(f"{output}/{bucket}/{key}")
    assert sum(summary.failures_by_reason.values()) == len(bad)

    # Originals untouched; re-running the same job redoes only the failed rows.
    assert storage.read_bytes(f"s3://{bucket}/scans/notes.jpg").startswith(b"shelf 4")
    again = restore_archive(job)
    assert (again.already_done, again.ok, again.failed) == (len(good), 0, len(bad))
    attempts = read_results(output, storage, ["id", "status"])
    assert attempts.num_rows == len(good) + 2 * len(bad)

    # Resuming the prefix with another model would mix two models in one results manifest: refused.
    other = dataclasses.replace(job, model=str(DEFAULT_CHECKPOINT))
    with pytest.raises(ValueError, match="already holds images restored by model tiny-"):
        restore_archive(other)
    # As a Ray Job too: refused by the watcher before it submits (on the cluster the failure would look
    # like lost infrastructure and be retried). No job server is reached: none listens on port 9.
    from pipeline.batch.remote import submit_restore

    with pytest.raises(ValueError, match="already holds images restored by model tiny-"):
        submit_restore(other, "http://127.0.0.1:9")


def test_refuses_output_inside_input(s3_server, ray_local, archive):
    bucket, manifest, _, _ = archive
    job = RestoreJob(
        manifest=manifest,
        output=f"s3://{bucket}/scans/restored",
        storage=StorageOptions(endpoint_url=s3_server.endpoint_url),
    )
    with pytest.raises(ValueError, match="inside the input folder"):
        restore_archive(job)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("s3://bucket/scans/a.jpg: not found; check the key or prefix", "not found"),
        ("/archive/box 4/a.jpg: not found; check the key or prefix", "not found"),
        ("0-byte file", "0-byte file"),
        (
            "truncated or corrupt image: broken data stream when reading image file",
            "truncated or corrupt image",
        ),
        ("not an image (unrecognised format)", "not an image"),
        (
            "image is 9000x9000 = 81,000,000 pixels, over the limit of 100,000 (raise --max-pixels)",
            "image is NxN = N pixels, over the limit of N",
        ),
        (  # single leading digits before a thousands separator were left behind ("4,N")
            "image is 2000x2000 = 4,000,000 pixels, over the limit of 1,500,000 (raise --max-pixels)",
            "image is NxN = N pixels, over the limit of N",
        ),
        ("S3 answered 503 after 5 attempts", "S3 answered N after 5 attempts"),
        ("", "unknown"),
    ],
)
def test_failure_reasons_group_errors_by_kind(error, reason):
    from pipeline.batch.summary import failure_reason

    assert failure_reason(error) == reason


def test_a_model_swapped_after_planning_fails_the_rows_with_one_model_id(ray_local, tmp_path, photo):
    # Planned with model A; by the time the actors load it, the file holds model B (a registry's "latest"
    # promoted mid-run). Every row fails with the reason and the results still name one model, A.
    from model.checkpoints import CheckpointError, checkpoint_id, decode_checkpoint, save_generator
    from model.restoration.config import tiny
    from model.restoration.generator import Generator
    from pipeline.batch.driver import build_dataset
    from pipeline.batch.restorer import Restorer
    from pipeline.storage import Storage

    model = tmp_path / "latest.safetensors"
    save_generator(model, Generator(tiny().generator), tiny(), step=1)
    planned = checkpoint_id(model.read_bytes(), decode_checkpoint(model.read_bytes(), str(model))[1])
    save_generator(model, Generator(tiny().generator), tiny(), step=2)  # swapped after planning
    photo.resize((40, 30)).save(tmp_path / "a.png")
    photo.resize((40, 30)).rotate(90).save(tmp_path / "b.png")
    todo = pa.table({"id": ["a", "b"], "uri": [str(tmp_path / "a.png"), str(tmp_path / "b.png")]})
    job = RestoreJob(manifest="unused", output=str(tmp_path / "out"), model=str(model))

    rows = build_dataset(todo, job, Storage(), planned, num_gpus=0, num_cpus=2).take_all()

    assert {row["status"] for row in rows} == {"failed"} and {row["model_id"] for row in rows} == {planned}
    assert all("changed since the run started" in row["error"] for row in rows)
    assert not (tmp_path / "out").exists()
    # Called directly, the refusal is an exception; with the planned model, nothing is refused.
    with pytest.raises(CheckpointError, match="changed since the run started"):
        Restorer(str(model), device="cpu", expected_id=planned).restore_pixels(np.zeros((4, 4, 3), np.uint8))
    assert Restorer(str(model), device="cpu", expected_id=Restorer(str(model)).model_id).refusal == ""


def test_a_model_deleted_after_planning_fails_the_rows_with_the_reason(tmp_path, tiny_checkpoint):
    from pipeline.batch.restorer import Restorer

    restorer = Restorer(
        str(tmp_path / "gone.safetensors"), device="cpu", expected_id="tiny-step7-000000000000"
    )
    assert restorer.refusal.startswith(f"model {tmp_path / 'gone.safetensors'}: not found")


def test_pipeline_pixels_are_the_shipped_model_applied_in_process(ray_local, tmp_path, photo):
    # What the archive gets is the generator's output, whole and tiled: lossless outputs from the real
    # pipeline equal the shipped model run directly on the decoded pixels (a skipped model, another model or
    # a broken tiling would all differ by far more than rounding).
    from model.checkpoints import load_generator
    from model.degradation.engine import degrade_image
    from model.restoration.inference import tile_restorer
    from pipeline.batch.tiling import restore_tiled

    folder = tmp_path / "scans"
    folder.mkdir()
    sizes = {"small.png": (96, 72), "large.png": (300, 220)}  # the large one is restored in tiles
    for i, (name, size) in enumerate(sizes.items()):
        degraded, _, _ = degrade_image(photo.resize(size), "medium", seed=i)
        degraded.save(folder / name)
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"uri": [str(folder / name) for name in sizes]}), manifest)
    cfg = PipelineConfig(tile=128, overlap=16, tiles_per_batch=2, output_format="png", fill="model")
    job = RestoreJob(
        manifest=str(manifest), output=str(tmp_path / "out"), model=str(DEFAULT_CHECKPOINT), pipeline=cfg
    )
    summary = restore_archive(job)
    assert summary.ok == 2

    outputs = {Path(r["uri"]).name: r["output_uri"] for r in pq.read_table(summary.results_uri).to_pylist()}
    generator, _, _ = load_generator(DEFAULT_CHECKPOINT)
    for name in sizes:
        degraded = np.asarray(Image.open(folder / name).convert("RGB"))
        image = torch.from_numpy(degraded.astype(np.float32) / 255).permute(2, 0, 1)
        expected, _ = restore_tiled(
            tile_restorer(generator, image), image, cfg.tile, cfg.overlap, cfg.tiles_per_batch
        )
        expected = (expected.permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype(np.int16)
        written = np.asarray(Image.open(outputs[name]), np.int16)
        assert np.abs(written - expected).max() <= 1, name
        assert np.abs(written - degraded.astype(np.int16)).mean() > 1  # and the model did change the photo


def test_stage_outputs_concatenate_whatever_rows_share_a_block(ray_local, tmp_path, photo, tiny_checkpoint):
    # Ray concatenates the outputs of several batches into one block whenever it likes (how often depends on
    # scheduling), so every column must have one Arrow type whatever image a row holds. With one-row batches
    # over one block this concatenation happens every time: 8-bit RGB, 16-bit gray, RGBA and a failed row.
    from pipeline.batch.restorer import Restorer
    from pipeline.batch.stages import decode, encode_and_write, fetch
    from pipeline.storage import Storage

    small = photo.resize((40, 30))
    images = {
        "rgb.png": small,
        "gray16.png": Image.fromarray(np.asarray(small.convert("L")).astype(np.uint16) * 257),
        "rgba.png": small.convert("RGBA"),
    }
    for name, image in images.items():
        image.save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    uris = [str(tmp_path / name) for name in ["rgb.png", "gray16.png", "broken.png", "rgba.png"]]
    table = pa.table({"id": [f"id-{i}" for i in range(len(uris))], "uri": uris})
    storage = Storage()
    ds = ray.data.from_arrow([table])
    ds = ds.map_batches(fetch, fn_kwargs={"storage": storage}, batch_size=1, batch_format="numpy")
    ds = ds.map_batches(decode, fn_kwargs={"max_pixels": MAX_PIXELS}, batch_size=1, batch_format="numpy")
    ds = ds.map_batches(
        Restorer,
        fn_constructor_kwargs={"checkpoint": str(tiny_checkpoint), "device": "cpu"},
        compute=ray.data.ActorPoolStrategy(size=1),
        batch_size=1,
        batch_format="numpy",
    )
    ds = ds.map_batches(
        encode_and_write,
        fn_kwargs={
            "output_prefix": str(tmp_path / "out"),
            "output_format": "png",
            "storage": storage,
            "model_id": "m",
        },
        batch_size=1,
        batch_format="numpy",
    )
    rows = {Path(row["uri"]).name: row for row in ds.take_all()}
    assert rows["broken.png"]["error"] == "not an image (unrecognised format)"
    for name, image in images.items():
        assert rows[name]["error"] == "", rows[name]["error"]
        written = Image.open(rows[name]["output_uri"])
        assert (written.mode, written.size) == (image.mode, image.size)


def test_originals_and_other_rows_outputs_are_never_written(ray_local, tmp_path, photo):
    # #9 items 2, 5 and 7 through a real run: two folder trees, the same file as a path and a file:// URI,
    # and a.jpg beside a.jpg.png with --format png (a.jpg's output would have been a.jpg.png's).
    import hashlib

    from pipeline.batch.outputs import check_output_prefix

    scans, other = tmp_path / "archive" / "scans", tmp_path / "archive" / "other" / "box"
    scans.mkdir(parents=True)
    other.mkdir(parents=True)
    small = photo.resize((48, 36))
    small.save(scans / "a.jpg")
    small.save(scans / "a.jpg.png")
    small.save(other / "c.jpg")
    inputs = {
        path: hashlib.sha256(path.read_bytes()).hexdigest() for path in tmp_path.rglob("*") if path.is_file()
    }
    uris = [str(scans / "a.jpg"), str(scans / "a.jpg.png"), f"file://{scans}/a.jpg", str(other / "c.jpg")]
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"id": ["a", "a-png", "a-again", "c"], "uri": uris}), manifest)
    (tmp_path / "alias").symlink_to(tmp_path / "archive")
    for output in [str(tmp_path / "alias" / "scans" / "out"), f"file://{scans}/out"]:
        with pytest.raises(ValueError, match="inside the input folder"):
            check_output_prefix(pa.array(uris), output)

    out = tmp_path / "archive" / "restored"
    job = RestoreJob(manifest=str(manifest), output=str(out), pipeline=PipelineConfig(output_format="png"))
    summary = restore_archive(job)

    rows = {row["id"]: row for row in pq.read_table(summary.results_uri).to_pylist()}
    assert (summary.ok, summary.failed) == (2, 2)
    assert rows["a"]["error"].startswith(f"{scans / 'a.jpg'}: output could collide with another row's (")
    assert (
        rows["a-again"]["error"]
        == f"file://{scans}/a.jpg: same file as an earlier row (a: {scans / 'a.jpg'})"
    )
    assert {rows[k]["status"] for k in ("a-png", "c")} == {"ok"}
    assert {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in inputs} == inputs
    written = sorted(p for p in out.rglob("*.png") if p.is_file())
    assert written == sorted(Path(rows[k]["output_uri"]) for k in ("a-png", "c"))
    assert summary.failures_by_reason == {
        "same file as an earlier row": 1,
        "output could collide with another row's": 1,
    }
