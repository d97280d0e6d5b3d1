"""Period looks at archive scale: `patina stylize` is the restore job with an era preset, or a retro model
and a reference photo, as its model."""

import hashlib
import io
import json
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from flows.cli import app
from model.checkpoints import load_generator
from model.retro.eras import era
from model.retro.generator import stylize
from model.retro.params import RetroParams
from model.retro.render import render
from pipeline.batch.config import PipelineConfig
from pipeline.batch.driver import RestoreJob, restore_archive
from pipeline.batch.stages import image_at, images_column
from pipeline.batch.stylizer import Stylizer, era_model_id, read_reference
from pipeline.manifest import MODEL_METADATA
from pipeline.storage import Storage, StorageOptions

runner = CliRunner()


def test_stylize_a_local_folder_end_to_end_and_resume(ray_local, tmp_path, photo):
    scans = tmp_path / "photos"
    scans.mkdir()
    photo.save(scans / "colour.jpg", quality=95)
    photo.convert("L").save(scans / "grey.png")
    (scans / "broken.jpg").write_bytes(b"\xff\xd8 not an image")
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"uri": [str(p) for p in sorted(scans.iterdir())]}), manifest)
    out = tmp_path / "sepia"
    args = [
        "stylize",
        "--manifest",
        str(manifest),
        "--output",
        str(out),
        "--era",
        "1900s-sepia",
        "--format",
        "png",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 stylized, 1 failed" in result.output

    rows = {r["uri"].rsplit("/", 1)[1]: r for r in pq.read_table(out / "results.parquet").to_pylist()}
    assert rows["broken.jpg"]["status"] == "failed"
    for name in ("colour.jpg", "grey.png"):
        row = rows[name]
        assert row["status"] == "ok" and row["model_id"] == era_model_id("1900s-sepia"), row
        assert row["model_id"].startswith("retro:1900s-sepia:")  # family and era recorded per row
        printed = np.asarray(Image.open(row["output_uri"]).convert("RGB"), np.float32)
        r, g, b = printed.reshape(-1, 3).mean(0)
        assert r > g > b, name  # sepia-toned, even from a grayscale scan

    again = runner.invoke(app, args)
    assert "0 stylized" in again.output and "2 already done" in again.output
    other = runner.invoke(app, [*args[:-4], "--era", "1980s-instant", "--format", "png"])
    assert other.exit_code == 2 and "already holds images" in other.stderr  # one era per output prefix


def test_stylize_an_s3_archive(s3_server, ray_local, photo, tiny_checkpoint):
    archive = s3_server.scan_archive(photo, count=3, model=tiny_checkpoint, missing=True)
    output = f"s3://{archive.bucket}/retro/1970s"
    job = RestoreJob(
        manifest=archive.manifest,
        output=output,
        model="era:1970s-faded-colour",
        pipeline=PipelineConfig(batch_size=2),
        storage=StorageOptions(endpoint_url=s3_server.endpoint_url),
    )
    summary = restore_archive(job)
    assert (summary.ok, summary.failed) == (3, 1)
    storage = s3_server.storage()
    results = pq.read_table(io.BytesIO(storage.read_bytes(f"{output}/results.parquet"))).to_pylist()
    for row in results:
        if row["status"] != "ok":
            continue
        written = np.asarray(Image.open(io.BytesIO(storage.read_bytes(row["output_uri"]))).convert("RGB"))
        source = np.asarray(Image.open(io.BytesIO(storage.read_bytes(row["uri"]))).convert("RGB"))
        assert written.shape == source.shape
        assert np.abs(written.astype(int) - source.astype(int)).mean() > 5  # the look was applied


def test_a_bad_era_is_one_line_before_any_work(tmp_path, photo):
    (tmp_path / "photos").mkdir()
    photo.save(tmp_path / "photos" / "a.png")
    manifest = tmp_path / "m.parquet"
    pq.write_table(pa.table({"uri": [str(tmp_path / "photos" / "a.png")]}), manifest)
    args = ["stylize", "--manifest", str(manifest), "--output", str(tmp_path / "out"), "--era", "1700s"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "unknown era '1700s'; choose one of" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA"])
def test_stylizer_renders_each_row_as_the_renderer_does(mode, photo):
    pixels = np.asarray(photo.convert(mode))
    pixels = pixels[..., None] if pixels.ndim == 2 else pixels
    batch = {
        "id": np.array(["row-1"], dtype=object),
        "error": np.array([""], dtype=object),
        "pixels": images_column([pixels]),
        "height": np.array([pixels.shape[0]]),
        "width": np.array([pixels.shape[1]]),
        "channels": np.array([pixels.shape[2]]),
        "bit_depth": np.array([8]),
    }
    out = Stylizer("1930s-silver-gelatin")(batch)
    assert out["error"][0] == ""
    printed = image_at(out, 0, "restored")
    assert printed.shape[2] == (4 if mode == "RGBA" else 3) == out["channels"][0]
    if mode == "RGBA":
        assert np.array_equal(printed[..., 3], pixels[..., 3])  # alpha carried bit for bit
    colour = np.repeat(pixels[..., :1], 3, axis=2) if pixels.shape[2] == 1 else pixels[..., :3]
    image = torch.from_numpy(colour.astype(np.float32) / 255).permute(2, 0, 1)
    expected = render(image, era("1930s-silver-gelatin"), zlib.crc32(b"row-1"))  # seeded by the row id
    expected = np.clip(np.rint(expected.permute(1, 2, 0).numpy() * 255), 0, 255)
    assert np.abs(printed[..., :3].astype(int) - expected.astype(int)).max() <= 1


def _archive(tmp_path, photo, names=("a.png", "b.jpg")):
    scans = tmp_path / "photos"
    scans.mkdir()
    for i, name in enumerate(names):
        photo.rotate(i * 30).save(scans / name)
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"uri": [str(scans / n) for n in names]}), manifest)
    return manifest


def test_stylize_in_the_look_of_a_reference_on_local_folders(
    ray_local, tmp_path, photo, tiny_retro_checkpoint
):
    manifest = _archive(tmp_path, photo)
    reference = tmp_path / "old.jpg"
    photo.convert("L").resize((50, 40)).save(reference)
    out = tmp_path / "looks"
    args = ["stylize", "--manifest", str(manifest), "--output", str(out), "--reference", str(reference)]
    result = runner.invoke(app, [*args, "--model", str(tiny_retro_checkpoint), "--format", "png"])
    assert result.exit_code == 0, result.output
    assert "2 stylized" in result.output

    table = pq.read_table(out / "results.parquet")
    look = json.loads(table.schema.metadata[MODEL_METADATA.encode()])
    assert look["family"] == "retro" and look["reference"] == str(reference)
    assert RetroParams.from_dict(look["params"]).sensitivity in ("blue", "ortho", "pan", "colour")
    digest = hashlib.sha256(reference.read_bytes()).hexdigest()[:12]
    model, _, checkpoint = load_generator(tiny_retro_checkpoint)
    with torch.no_grad():
        style = model.encoder(read_reference(str(reference), Storage())[0])
    for row in table.to_pylist():
        assert row["status"] == "ok" and row["model_id"] == f"{checkpoint}+reference-{digest}", row
        written = np.asarray(Image.open(row["output_uri"]).convert("RGB"))
        source = np.asarray(Image.open(row["uri"]).convert("RGB"))
        # What the actor wrote is the model's tiled stylisation of the photo (bf16 on this CPU: 2 levels).
        x = torch.from_numpy(source.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        expected = ((stylize(model, x, style)[0] + 1) * 127.5).clamp(0, 255).permute(1, 2, 0).numpy()
        assert np.abs(written.astype(float) - np.rint(expected)).mean() < 2.5
        assert np.abs(written.astype(int) - source.astype(int)).mean() > 3  # the look was applied

    # Another reference is another look: refused in the same output prefix.
    photo.rotate(90).save(tmp_path / "other.png")
    other = runner.invoke(
        app, [*args[:-1], str(tmp_path / "other.png"), "--model", str(tiny_retro_checkpoint)]
    )
    assert other.exit_code == 2 and "already holds images" in other.stderr


def test_stylize_in_the_look_of_a_reference_on_s3(s3_server, ray_local, photo, tiny_retro_checkpoint):
    archive = s3_server.scan_archive(photo, count=2, model=tiny_retro_checkpoint)
    buffer = io.BytesIO()
    photo.resize((48, 36)).save(buffer, "JPEG")
    s3_server.client().put_object(Bucket=archive.bucket, Key="refs/old.jpg", Body=buffer.getvalue())
    output = f"s3://{archive.bucket}/retro/ref"
    job = RestoreJob(
        manifest=archive.manifest,
        output=output,
        model=archive.model,
        reference=f"s3://{archive.bucket}/refs/old.jpg",
        storage=StorageOptions(endpoint_url=s3_server.endpoint_url),
    )
    assert RestoreJob.from_json(job.to_json()) == job  # what a Ray Job receives
    summary = restore_archive(job)
    assert (summary.ok, summary.failed) == (2, 0)
    storage = s3_server.storage()
    results = pq.read_table(io.BytesIO(storage.read_bytes(f"{output}/results.parquet")))
    assert json.loads(results.schema.metadata[MODEL_METADATA.encode()])["reference"] == job.reference


def test_a_reference_that_is_not_an_image_is_one_line_before_any_work(tmp_path, photo, tiny_retro_checkpoint):
    manifest = _archive(tmp_path, photo)
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    out = tmp_path / "out"
    args = ["stylize", "--manifest", str(manifest), "--output", str(out), "--reference", str(bad)]
    result = runner.invoke(app, [*args, "--model", str(tiny_retro_checkpoint)])
    assert result.exit_code == 2 and "the reference is not a readable image" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    both = runner.invoke(app, [*args, "--era", "1900s-sepia"])
    assert both.exit_code == 2 and "exactly one of --era NAME or --reference" in both.stderr


def test_a_restoration_model_with_a_reference_or_a_retro_model_without_one_is_refused(
    tmp_path, photo, tiny_checkpoint, tiny_retro_checkpoint
):
    manifest = _archive(tmp_path, photo)
    reference = tmp_path / "old.png"
    photo.save(reference)
    out = str(tmp_path / "out")
    with pytest.raises(ValueError, match="takes no reference; use a retro model"):
        restore_archive(RestoreJob(str(manifest), out, model=str(tiny_checkpoint), reference=str(reference)))
    with pytest.raises(ValueError, match=r"look of a reference photo \(stylize --reference\)"):
        restore_archive(RestoreJob(str(manifest), out, model=str(tiny_retro_checkpoint)))


def test_a_16_bit_reference_is_read_at_its_full_depth(tmp_path):
    grey = np.linspace(0, 65535, 48 * 64).reshape(48, 64).astype(np.uint16)
    path = tmp_path / "old16.png"
    Image.fromarray(grey).save(path)  # mode I;16, as many scanned prints are
    image, _ = read_reference(str(path), Storage())
    assert image.shape == (1, 3, 48, 64)
    assert abs(float(image[0, 0, 24, 32] + 1) / 2 - grey[24, 32] / 65535) < 0.01  # not clipped to white


def test_a_reference_changed_or_gone_mid_run_fails_rows_with_the_reason(
    tmp_path, photo, tiny_retro_checkpoint
):
    from pipeline.batch.stylizer import ReferenceStylizer

    reference = tmp_path / "old.png"
    photo.save(reference)
    planned = ReferenceStylizer(str(tiny_retro_checkpoint), str(reference), device="cpu").model_id
    assert ReferenceStylizer(str(tiny_retro_checkpoint), str(reference), expected_id=planned).refusal == ""
    photo.rotate(45).save(reference)  # replaced after planning
    changed = ReferenceStylizer(str(tiny_retro_checkpoint), str(reference), expected_id=planned)
    assert "the reference changed since the run started" in changed.refusal
    reference.unlink()
    gone = ReferenceStylizer(str(tiny_retro_checkpoint), str(reference), expected_id=planned)
    assert gone.refusal.startswith("reference ") and "old.png" in gone.refusal


def test_retro_tools_read_a_model_from_s3(tmp_path, photo, tiny_retro_checkpoint, s3_server, bucket):
    """`retro evaluate` and `retro gallery` load an s3:// retro model from the given endpoint (they once built
    a bare Storage() and went to AWS)."""
    s3_server.client().put_object(
        Bucket=bucket, Key="retro.safetensors", Body=tiny_retro_checkpoint.read_bytes()
    )
    remote = ["--model", f"s3://{bucket}/retro.safetensors", "--endpoint-url", s3_server.endpoint_url]
    (tmp_path / "in").mkdir()
    photo.save(tmp_path / "in" / "a.png")
    photo.rotate(90).save(tmp_path / "in" / "b.png")
    photo.save(tmp_path / "old.png")
    evaluated = runner.invoke(
        app, ["retro", "evaluate", "--val", str(tmp_path / "in"), "--max-side", "48", *remote]
    )
    assert evaluated.exit_code == 0 and "retro model (tiny-step3" in evaluated.output, evaluated.output
    args = ["retro", "gallery", str(tmp_path / "in"), str(tmp_path / "out"), "--eras", "1900s-sepia"]
    gallery = runner.invoke(app, [*args, "--reference", str(tmp_path / "old.png"), "--side", "48", *remote])
    assert gallery.exit_code == 0, gallery.output
    assert "look of old.png" in (tmp_path / "out" / "retro.html").read_text()
