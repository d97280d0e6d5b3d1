"""Fault injection (#9): a worker node holding a restore actor dies mid-run; the run still completes, each
row recorded once, every output whole. A real multi-node Ray cluster on this machine (ray.cluster_utils)."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image
from ray.cluster_utils import Cluster

from pipeline.batch.config import PipelineConfig, RestoreJob
from pipeline.batch.driver import restore_actors, restore_archive
from pipeline.batch.summary import RunProgress
from pipeline.manifest import read_results
from pipeline.storage import Storage

pytestmark = pytest.mark.usefixtures("no_ray")  # its own Ray, or none: not the shared one

ROWS = 32


@pytest.fixture
def cluster():
    # The head takes no work, so every actor and task runs on the two worker nodes, one of which dies.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def _kill_a_worker_node_once(cluster: Cluster, workers: list) -> tuple[Callable, list[int]]:
    """on_progress hook: remove the first worker node (no graceful shutdown) when the first rows are done.
    It holds restore actors for sure: the run starts one 1-CPU actor per CPU (4) over two 2-CPU nodes, so
    each node holds two."""
    killed: list[int] = []

    def hook(progress: RunProgress) -> None:
        if not killed and progress.processed:
            cluster.remove_node(workers[0], allow_graceful=False)
            killed.append(progress.processed)  # rows done when the node died

    return hook, killed


@pytest.mark.timeout(600)
def test_a_lost_worker_node_mid_run_loses_nothing(cluster, tmp_path, photo, tiny_checkpoint):
    cluster, workers = cluster
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(ROWS):
        photo.resize((64, 48)).rotate(i * 5).save(scans / f"{i:02d}.png")
    manifest = tmp_path / "manifest.parquet"
    pq.write_table(pa.table({"uri": [str(scans / f"{i:02d}.png") for i in range(ROWS)]}), manifest)
    output = tmp_path / "restored"
    job = RestoreJob(
        manifest=str(manifest),
        output=str(output),
        model=str(tiny_checkpoint),
        pipeline=PipelineConfig(tile=64, overlap=8, batch_size=2),
        flush_rows=2,
    )
    hook, killed = _kill_a_worker_node_once(cluster, workers)

    summary = restore_archive(job, hook)

    assert restore_actors(num_gpus=0, num_cpus=4) == 4  # what makes every worker node hold actors
    assert killed and killed[0] < ROWS, "the node died after the last row: the test proved nothing"
    assert (summary.ok, summary.failed) == (ROWS, 0), summary.failures_by_reason
    parts = read_results(str(output), Storage())
    assert sorted(parts["id"].to_pylist()) == sorted(set(parts["id"].to_pylist()))  # each row recorded once
    results = pq.read_table(summary.results_uri)
    written = sorted(str(p) for p in output.rglob("*.png"))
    assert written == sorted(results["output_uri"].to_pylist())
    for uri in written:
        with Image.open(uri) as image:
            image.load()  # whole, not a partial write
    assert not [p for p in output.rglob("*.tmp")]
