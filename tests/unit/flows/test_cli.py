"""The `patina` command in-process, on real files."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flows.cli import app
from model.checkpoints import DEFAULT_CHECKPOINT
from pipeline.tools.folders import evaluate_folders

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("model", "degrade", "evaluate", "demo"):
        assert command in result.output


@pytest.mark.parametrize("preset", ["tiny", "small", "large"])
def test_model_info(preset):
    result = runner.invoke(app, ["model", "info", "--preset", preset])
    assert result.exit_code == 0, result.output
    assert "generator" in result.output and "discriminator" in result.output
    assert "GFLOPs" in result.output


def test_model_info_unknown_preset_is_one_line():
    result = runner.invoke(app, ["model", "info", "--preset", "huge"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown preset 'huge'" in result.stderr


@pytest.fixture
def photos(tmp_path, photo):
    src = tmp_path / "clean"
    src.mkdir()
    photo.save(src / "astronaut.jpg", quality=95)
    photo.resize((131, 97)).convert("L").save(src / "gray.png")
    photo.convert("RGBA").save(src / "alpha.png")
    (src / "notes.txt").write_text("not an image")
    return src


def test_degrade_then_evaluate(tmp_path, photos):
    out = tmp_path / "degraded"
    result = runner.invoke(app, ["degrade", str(photos), str(out), "--preset", "heavy", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "degraded 3 images" in result.output
    for stem in ("astronaut", "gray", "alpha"):
        degraded = Image.open(out / f"{stem}.png")
        mask = Image.open(out / f"{stem}.mask.png")
        assert (
            degraded.size
            == mask.size
            == Image.open(photos / f"{stem}.{'jpg' if stem == 'astronaut' else 'png'}").size
        )
        assert set(np.unique(np.asarray(mask))) <= {0, 255}
    # Same seed, same bytes.
    again = tmp_path / "again"
    runner.invoke(app, ["degrade", str(photos), str(again), "--preset", "heavy", "--seed", "1"])
    assert (again / "astronaut.png").read_bytes() == (out / "astronaut.png").read_bytes()

    # Degraded vs its own clean targets: finite PSNR, mask IoU of the true masks with themselves is 1.
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--restored",
            str(out),
            "--clean",
            str(out),
            "--pred-masks",
            str(out),
            "--true-masks",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mean of 3" in result.output and "1.000" in result.output


def test_degrade_refuses_to_overwrite_originals(photos):
    result = runner.invoke(app, ["degrade", str(photos), str(photos)])
    assert result.exit_code == 2 and "originals" in result.stderr


def test_evaluate_missing_folder(tmp_path):
    result = runner.invoke(app, ["evaluate", "--restored", str(tmp_path / "nope"), "--clean", str(tmp_path)])
    assert result.exit_code == 2 and "not a folder" in result.stderr


def test_baseline_restores_a_degraded_folder_and_resumes(tmp_path, photos):
    degraded = tmp_path / "degraded"
    runner.invoke(app, ["degrade", str(photos), str(degraded), "--preset", "heavy", "--seed", "1"])
    (degraded / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "baseline"
    result = runner.invoke(app, ["baseline", str(degraded), str(out)])
    # The broken file is one failed line; the three degraded photos are restored anyway (exit 1 says so).
    assert result.exit_code == 1, result.output
    assert "restored 3 images" in result.output and "1 failed" in result.output
    assert "failed: broken.jpg:" in result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "alpha.png",
        "astronaut.png",
        "gray.png",
    ]  # no .clean/.mask
    # It restores rather than copies: heavy damage gets closer to the clean target.
    (degraded / "broken.jpg").unlink()
    restored, before = evaluate_folders(out, degraded), evaluate_folders(degraded, degraded)
    assert np.mean([s.psnr for s in restored]) > np.mean([s.psnr for s in before])
    # A re-run keeps what is there.
    stamp = (out / "astronaut.png").stat().st_mtime_ns
    again = runner.invoke(app, ["baseline", str(degraded), str(out)])
    assert "restored 0 images" in again.output and "3 already there" in again.output
    assert (out / "astronaut.png").stat().st_mtime_ns == stamp


def test_baseline_never_lets_two_inputs_share_an_output(tmp_path, photo):
    src = tmp_path / "scans"
    src.mkdir()
    photo.save(src / "a.jpg")
    photo.rotate(90).save(src / "a.png")
    result = runner.invoke(app, ["baseline", str(src), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg.png", "a.png.png"]


def test_baseline_keeps_gray_gray_and_alpha(tmp_path, photos):
    result = runner.invoke(app, ["baseline", str(photos), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "gray.png").mode == "L"
    restored = Image.open(tmp_path / "out" / "alpha.png")
    assert restored.mode == "RGBA"
    assert np.array_equal(np.asarray(restored)[..., 3], np.asarray(Image.open(photos / "alpha.png"))[..., 3])


def test_baseline_refuses_to_write_into_its_input(photos):
    result = runner.invoke(app, ["baseline", str(photos), str(photos)])
    assert result.exit_code == 2 and "originals" in result.stderr


def test_model_evaluate_prints_the_comparison_table(tmp_path, photos, tiny_checkpoint):
    out = tmp_path / "table.json"
    args = ["model", "evaluate", "--val", str(photos), "--model", str(tiny_checkpoint), "--json", str(out)]
    result = runner.invoke(app, [*args, "--max-side", "96"])
    assert result.exit_code == 0, result.output
    for word in (
        "light",
        "medium",
        "heavy",
        "published",
        "clean",
        "degraded",
        "baseline",
        "model",
        "tiny-step7",
    ):
        assert word in result.output
    table = json.loads(out.read_text())
    assert set(table["model"]) == {"light", "medium", "heavy", "published", "clean"}
    assert table["degraded"]["clean"]["psnr"] == 99.0  # the clean set is the photo itself
    assert {"psnr", "ssim", "hf_ratio", "psnr_min"} == set(table["model"]["heavy"])


def test_model_evaluate_loads_from_s3(tmp_path, photos, tiny_checkpoint, s3_server, bucket):
    # The one loader: a model on S3 evaluates as well as it restores.
    s3_server.storage().write_file(f"s3://{bucket}/m/tiny.safetensors", str(tiny_checkpoint))
    args = [
        "model",
        "evaluate",
        "--val",
        str(photos),
        "--model",
        f"s3://{bucket}/m/tiny.safetensors",
        "--endpoint-url",
        s3_server.endpoint_url,
        "--sets",
        "light",
        "--no-baseline",
        "--max-side",
        "64",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "tiny-step7" in result.output and "medium" not in result.output


@pytest.mark.timeout(300)
def test_retro_render_makes_period_prints_and_resumes(tmp_path, photos):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "sepia"
    result = runner.invoke(
        app, ["retro", "render", str(photos), str(out), "--era", "1900s-sepia", "--seed", "3"]
    )
    assert result.exit_code == 1 and "rendered 3 images" in result.output, result.output
    assert "failed: broken.jpg:" in result.output
    prints = {p.name: np.asarray(Image.open(p).convert("RGB"), np.float32) for p in out.iterdir()}
    assert sorted(prints) == ["alpha.png", "astronaut.png", "gray.png"]
    r, g, b = prints["astronaut.png"].reshape(-1, 3).mean(0)
    assert r > g > b  # a sepia print, whatever colours the photo had
    with_alpha = Image.open(out / "alpha.png")
    assert with_alpha.mode == "RGBA"
    assert np.array_equal(
        np.asarray(with_alpha)[..., 3], np.asarray(Image.open(photos / "alpha.png"))[..., 3]
    )
    again = runner.invoke(app, ["retro", "render", str(photos), str(out), "--era", "1900s-sepia"])
    assert "rendered 0 images" in again.output and "3 already there" in again.output


def test_retro_params_json_drives_the_renderer(tmp_path, photos):
    shown = runner.invoke(app, ["retro", "eras", "1970s-faded-colour"])
    assert shown.exit_code == 0
    params = json.loads(shown.output)
    params["dye_fade"] = [0.0, 0.0, 0.0]
    (tmp_path / "look.json").write_text(json.dumps(params))
    result = runner.invoke(
        app, ["retro", "render", str(photos), str(tmp_path / "out"), "--params", str(tmp_path / "look.json")]
    )
    assert result.exit_code == 0 and "rendered 3 images" in result.output, result.output


def test_retro_errors_are_one_line(tmp_path, photos):
    bad_era = runner.invoke(app, ["retro", "render", str(photos), str(tmp_path / "o"), "--era", "1700s"])
    assert bad_era.exit_code == 2 and "choose one of ['1860s-albumen'" in bad_era.stderr
    neither = runner.invoke(app, ["retro", "render", str(photos), str(tmp_path / "o")])
    assert neither.exit_code == 2 and "exactly one of --era" in neither.stderr
    (tmp_path / "bad.json").write_text('{"sensitivity": "infrared"}')
    bad = runner.invoke(
        app, ["retro", "render", str(photos), str(tmp_path / "o"), "--params", str(tmp_path / "bad.json")]
    )
    assert bad.exit_code == 2 and "unknown sensitivity 'infrared'" in bad.stderr
    into_input = runner.invoke(app, ["retro", "render", str(photos), str(photos), "--era", "1980s-instant"])
    assert into_input.exit_code == 2 and "originals" in into_input.stderr


def test_retro_gallery_is_a_grid_of_photos_by_eras(tmp_path, photos):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    out = tmp_path / "gallery"
    result = runner.invoke(
        app, ["retro", "gallery", str(photos), str(out), "--eras", "1860s-albumen,1980s-instant"]
    )
    assert result.exit_code == 0, result.output
    page = (out / "retro.html").read_text()
    assert page.count("<tr>") == 1 + 3 + 1  # header, three photos, one row saying why broken.jpg failed
    assert page.count("<img ") == 3 * 3 and "broken.jpg:" in page
    for name in ("astronaut.jpg.jpg", "astronaut.jpg.1860s-albumen.jpg", "gray.png.1980s-instant.jpg"):
        assert Image.open(out / "thumbs" / name).size[0] > 0
    bad = runner.invoke(app, ["retro", "gallery", str(photos), str(out), "--eras", "1700s"])
    assert bad.exit_code == 2 and "unknown era '1700s'" in bad.stderr


def test_retro_evaluate_prints_the_transfer_and_content_tables(tmp_path, photo, tiny_retro_checkpoint):
    val = tmp_path / "val"
    val.mkdir()
    for i in range(3):
        photo.rotate(30 * i).save(val / f"{i}.png")
    args = ["retro", "evaluate", "--val", str(val), "--max-side", "48", "--model", str(tiny_retro_checkpoint)]
    result = runner.invoke(app, [*args, "--json", str(tmp_path / "eval.json")])
    assert result.exit_code == 0, result.output
    for text in ("untouched photo", "reinhard", "histogram", "retro model (tiny-step3", "sensitivity class"):
        assert text in result.output
    for text in ("1860s-albumen", "1980s-instant", "negative_gamma", "vignette"):
        assert text in result.output
    report = json.loads((tmp_path / "eval.json").read_text())
    assert set(report["transfer"]) >= {"untouched photo", "reinhard", "histogram"} and report["photos"] == 3
    assert 0 <= report["recovery"]["sensitivity_accuracy"] <= 1
    (val / "bad.png").write_bytes(b"nope")
    bad = runner.invoke(app, ["retro", "evaluate", "--val", str(val), "--model", str(tiny_retro_checkpoint)])
    assert bad.exit_code == 2 and "bad.png: not a readable image" in bad.stderr


def test_retro_estimate_prints_parameters_that_render(tmp_path, photo, tiny_retro_checkpoint):
    from model.retro.params import RetroParams

    old = tmp_path / "old.jpg"
    photo.convert("L").save(old)
    result = runner.invoke(app, ["retro", "estimate", str(old), "--model", str(tiny_retro_checkpoint)])
    assert result.exit_code == 0, result.output
    params = RetroParams.from_json(result.stdout)  # the JSON `patina retro render --params` takes
    assert params.sensitivity in ("blue", "ortho", "pan", "colour")
    (tmp_path / "look.json").write_text(result.stdout)
    (tmp_path / "in").mkdir()
    photo.save(tmp_path / "in" / "a.png")
    rendered = runner.invoke(
        app,
        [
            "retro",
            "render",
            str(tmp_path / "in"),
            str(tmp_path / "out"),
            "--params",
            str(tmp_path / "look.json"),
        ],
    )
    assert rendered.exit_code == 0 and (tmp_path / "out" / "a.png").exists(), rendered.output
    (tmp_path / "notes.jpg").write_text("text")
    bad = runner.invoke(
        app, ["retro", "estimate", str(tmp_path / "notes.jpg"), "--model", str(tiny_retro_checkpoint)]
    )
    assert bad.exit_code == 2 and "the reference is not a readable image" in bad.stderr
    restoration = runner.invoke(app, ["retro", "estimate", str(old), "--model", str(DEFAULT_CHECKPOINT)])
    assert (
        restoration.exit_code == 2
        and "is a restoration model; a reference needs a retro model" in restoration.stderr
    )


def test_retro_gallery_adds_a_column_in_the_look_of_a_reference(tmp_path, photo, tiny_retro_checkpoint):
    (tmp_path / "in").mkdir()
    photo.save(tmp_path / "in" / "a.png")
    photo.save(tmp_path / "old.png")
    args = ["retro", "gallery", str(tmp_path / "in"), str(tmp_path / "out"), "--eras", "1900s-sepia"]
    args += ["--reference", str(tmp_path / "old.png"), "--model", str(tiny_retro_checkpoint), "--side", "64"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    page = (tmp_path / "out" / "retro.html").read_text()
    assert (
        "look of old.png" in page and "thumbs/a.png.reference.jpg" in page and "thumbs/reference.jpg" in page
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://admin:hunter2@s3_store:9000",
        "http://admin:hunter2@minio:9000",
        "http://s3_store:9000",
        "minio:9000",
    ],
)
def test_a_bad_endpoint_is_refused_before_work_and_never_printed_with_its_password(tmp_path, endpoint):
    # An endpoint botocore rejects would fail deep in a Ray task, traceback and URL in Ray's logs; one with
    # credentials must never echo them.
    for args in (
        ["manifest", "build", "s3://bucket/scans", str(tmp_path / "m.parquet")],
        ["restore", "--manifest", "s3://bucket/m.parquet", "--output", str(tmp_path / "out")],
    ):
        result = runner.invoke(app, [*args, "--endpoint-url", endpoint])
        assert result.exit_code == 2, result.output
        message = result.output.strip()
        assert "hunter2" not in message and "\n" not in message and "endpoint" in message, message
    assert not (tmp_path / "out").exists() and not (tmp_path / "m.parquet").exists()


def test_credentials_in_any_message_are_redacted():
    from pipeline.storage import StorageError, redact

    assert redact("cannot reach https://key:secret@s3.example.com/b (s3://b/x)") == (
        "cannot reach https://***@s3.example.com/b (s3://b/x)"
    )
    assert "secret" not in str(StorageError("http://u:secret@h:9000/b: no access"))


def test_rich_markup_in_a_path_is_printed_as_text(tmp_path, photo):
    # "[/x]" in an output prefix or a failed file's name once crashed the CLI after a finished run.
    scans = tmp_path / "scans [/x]"  # a folder "x]" inside "scans [": the path reads "[/x]"
    scans.mkdir(parents=True)
    photo.save(scans / "a[b].png")
    (scans / "[bold]broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out [/x]"
    result = runner.invoke(app, ["baseline", str(scans), str(out)])
    assert result.exit_code == 1 and "MarkupError" not in result.output, result.output
    assert "failed: [bold]broken.jpg:" in result.output and "restored 1 images" in result.output
    assert (out / "a[b].png").exists()


def test_manifest_build_names_the_photos_it_leaves_out(tmp_path, photo):
    scans = tmp_path / "scans"
    scans.mkdir()
    photo.save(scans / "a.png")
    (scans / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (scans / "b.avif").write_bytes(b"\x00\x00\x00\x1cftypavif")
    (scans / "notes.txt").write_text("not a photo, not mentioned")
    result = runner.invoke(app, ["manifest", "build", str(scans), str(tmp_path / "m.parquet")])
    assert result.exit_code == 0, result.output
    assert "wrote 1 images" in result.output
    assert "left out 2 photos in formats patina does not restore: 1 .avif, 1 .heic" in result.output
