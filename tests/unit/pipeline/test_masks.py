"""The detect-and-fill path of the archive job: masks written beside their outputs, the Telea fill, the
plan refusing rows whose output is another row's mask, and tiled == untiled with masks. Real stages and the
shipped weights, in-process (``FusedActor`` without Ray)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import skimage.data
from PIL import Image, ImageDraw

from model.files import DEFAULT_CHECKPOINT
from model.metrics import detection_scores, f1_from_counts
from pipeline.batch.config import PipelineConfig
from pipeline.batch.fused import FusedActor
from pipeline.batch.outputs import mask_uri, plan_collisions
from pipeline.batch.restorer import Restorer
from pipeline.storage import Storage


def _scratched_flat(size: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A flat mid-grey field with a bright 2 px scratch across it, and the scratch's pixels."""
    image = Image.new("RGB", (size, size), (110, 105, 100))
    ImageDraw.Draw(image).line([(20, 30), (140, 120)], fill=(245, 242, 235), width=2)
    pixels = np.asarray(image)
    return pixels, (pixels[..., 0] > 200)


@pytest.mark.parametrize("fill", ["mask", "model", "telea"])
def test_a_scratch_on_a_flat_field_is_detected_and_filled(fill):
    pixels, scratch = _scratched_flat()
    restorer = Restorer(str(DEFAULT_CHECKPOINT), pipeline=PipelineConfig(fill=fill), device="cpu")
    restored, coverage, mask = restorer.restore_masked(pixels)
    precision, recall, _ = f1_from_counts(*detection_scores(mask, scratch))
    assert precision > 0.9 and recall > 0.7  # found (shipped model: 1.00 and 1.00), and nothing else
    error = np.abs(restored.astype(int) - pixels[0, 0].astype(int)).max(axis=2)
    # The scratch stood 135 levels above the field; the shipped model takes its median to ~24 (not yet all).
    assert np.median(error[scratch]) < 70
    assert error[~scratch].mean() < 2
    assert coverage == pytest.approx(mask.mean())


def test_a_clean_photo_keeps_its_colours():
    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256)))
    restorer = Restorer(str(DEFAULT_CHECKPOINT), device="cpu")
    restored, coverage, _ = restorer.restore_masked(photo)
    means = restored.reshape(-1, 3).mean(0) - photo.reshape(-1, 3).mean(0)
    spreads = restored.reshape(-1, 3).std(0) / photo.reshape(-1, 3).std(0)
    assert np.abs(means).max() < 1.0  # grey levels
    assert np.all(np.abs(spreads - 1) < 0.03)
    assert coverage < 0.002


def test_tiled_equals_untiled_with_masks():
    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((300, 240)))
    pixels, _ = _scratched_flat(300)
    photo = np.where(pixels[:240] > 200, pixels[:240], photo)  # the scratch drawn over the photo
    whole = Restorer(str(DEFAULT_CHECKPOINT), pipeline=PipelineConfig(tile=1024), device="cpu")
    tiled = Restorer(str(DEFAULT_CHECKPOINT), pipeline=PipelineConfig(tile=128, overlap=32), device="cpu")
    (a, _, mask_a), (b, _, mask_b) = whole.restore_masked(photo), tiled.restore_masked(photo)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0
    assert (mask_a != mask_b).mean() < 0.002


def test_masks_are_written_beside_their_outputs(tmp_path: Path):
    pixels, _ = _scratched_flat()
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.fromarray(pixels).save(folder / "a.png")
    Image.fromarray(pixels[:100, :120]).save(folder / "b.jpg", quality=95)
    storage, out = Storage(), str(tmp_path / "out")
    actor = FusedActor(
        Restorer,
        {"checkpoint": str(DEFAULT_CHECKPOINT), "pipeline": PipelineConfig(masks=True), "device": "cpu"},
        10**7,
        {"output_prefix": out, "output_format": "same", "storage": storage, "model_id": "m"},
    )
    uris = [str(folder / "a.png"), str(folder / "b.jpg")]
    rows = actor({"id": np.array(uris, dtype=object), "uri": np.array(uris, dtype=object)})
    assert list(rows["status"]) == ["ok", "ok"]
    for output, coverage in zip(rows["output_uri"], rows["defect_coverage"], strict=True):
        with Image.open(output) as restored, Image.open(mask_uri(output)) as mask:
            assert mask.mode == "L" and mask.size == restored.size
            values = np.asarray(mask)
            assert set(np.unique(values)) <= {0, 255}
            assert (values == 255).mean() == pytest.approx(coverage, abs=1e-6)
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "b.jpg"]  # nothing written beside inputs


def test_without_masks_no_mask_is_written(tmp_path: Path):
    pixels, _ = _scratched_flat(64)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = tmp_path / "out"
    actor = FusedActor(
        Restorer,
        {"checkpoint": str(DEFAULT_CHECKPOINT), "device": "cpu"},
        10**7,
        {"output_prefix": str(out), "output_format": "same", "storage": Storage(), "model_id": "m"},
    )
    uri = str(tmp_path / "a.png")
    rows = actor({"id": np.array([uri], dtype=object), "uri": np.array([uri], dtype=object)})
    assert rows["status"][0] == "ok"
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["a.png"]


def test_a_row_whose_output_is_another_rows_mask_is_refused(tmp_path: Path):
    uris = [
        f"{tmp_path}/x.jpg",
        f"{tmp_path}/x.jpg.mask.png",
        f"{tmp_path}/y.tif",
        f"{tmp_path}/y.tif.png.mask.png",
    ]
    ids = pa.array(uris)
    out = str(tmp_path.parent / "restored")
    assert plan_collisions(ids, pa.array(uris), out, "same") == {}  # without masks nothing collides
    refused = plan_collisions(ids, pa.array(uris), out, "png", masks=True)
    assert set(refused) == {uris[1], uris[3]}
    assert all("defect mask" in reason for reason in refused.values())


def test_a_mask_that_would_land_on_an_input_is_refused(tmp_path: Path):
    out = tmp_path / "restored"
    inside = out / str(tmp_path).lstrip("/")
    uris = [f"{tmp_path}/scans/a.png", f"{inside}/scans/a.png.mask.png"]
    refused = plan_collisions(pa.array(uris), pa.array(uris), str(out), "same", masks=True)
    assert uris[0] in refused and "defect mask would overwrite an input" in refused[uris[0]]
