"""`make demo` end to end, in-process: archive, manifest, Ray pipeline restore, gallery."""

import pyarrow.parquet as pq
from PIL import Image

from pipeline.tools.demo import run_demo

SAMPLES = (("camera", "heavy"), ("chelsea", "medium"))


def test_demo_restores_archive_and_writes_gallery(tmp_path, tiny_checkpoint):
    summary, scores, description, page = run_demo(tmp_path, str(tiny_checkpoint), samples=SAMPLES)
    assert (summary.ok, summary.failed) == (2, 0)
    results = pq.read_table(tmp_path / "restored" / "results.parquet")
    assert results.num_rows == 2 and set(results["severity"].to_pylist()) == {"heavy", "medium"}
    html = page.read_text()
    for row in results.to_pylist():
        with Image.open(row["uri"]) as degraded, Image.open(row["output_uri"]) as restored:
            assert restored.size == degraded.size
        assert row["id"] in html
    assert [s.name for s in scores] == ["camera-heavy", "chelsea-medium"]
    assert all(s.psnr_degraded < 30 for s in scores)  # the archive really is degraded
    assert str(tiny_checkpoint) in description
