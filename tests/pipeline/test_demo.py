"""`make demo` end to end, in-process: sample photos degraded, restored, scored and shown on a page."""

from PIL import Image

from pipeline.demo import SAMPLES, run_demo


def test_demo_writes_viewable_results(tmp_path):
    rows, model_name = run_demo(tmp_path, seed=0)
    assert [r.name for r in rows] == list(SAMPLES)
    page = (tmp_path / "index.html").read_text()
    for name in SAMPLES:
        sizes = {
            Image.open(tmp_path / sub / f"{name}.png").size
            for sub in ("clean", "degraded", "restored", "masks")
        }
        assert len(sizes) == 1  # restored keeps the photo's size
        assert f"restored/{name}.png" in page
    assert all(r.psnr_degraded < 30 for r in rows)  # the samples really were degraded
    assert model_name in page
