"""Fault injection (#9): a worker node holding a restore actor dies mid-run; the run still completes, each
row recorded once, every output whole. A real multi-node Ray cluster on this machine (ray.cluster_utils)."""

from __future__ import annotations

import socket
import threading
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray
from PIL import Image
from ray.cluster_utils import Cluster

from pipeline.config import PipelineConfig
from pipeline.manifest import read_results
from pipeline.run import Progress, RestoreJob, restore_archive
from pipeline.storage import Storage

ROWS = 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster():
    # The head takes no work, so every actor and task runs on the two worker nodes, one of which dies.
    # The dashboard serves the state API the test asks where the restore actors live.
    head = {"num_cpus": 0, "include_dashboard": True, "dashboard_port": free_port()}
    cluster = Cluster(
        initialize_head=True, head_node_args={**head, "dashboard_agent_listen_port": free_port()}
    )
    workers = [cluster.add_node(num_cpus=2) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


def _kill_a_node_with_a_restore_actor(cluster: Cluster, workers: list) -> tuple[callable, list[str]]:
    from ray.util.state import list_actors

    killed: list[str] = []
    lock = threading.Lock()

    def hook(progress: Progress) -> None:
        with lock:
            if killed or not progress.processed:
                return
            # The state API catches up with new actors within seconds.
            for _ in range(40):
                alive = list_actors(filters=[("state", "=", "ALIVE")], detail=True)
                node_ids = {a.node_id for a in alive if "MapWorker" in a.class_name}  # the restore actors
                if node_ids:
                    break
                time.sleep(0.5)
            victim = next(node for node in workers if node.node_id in node_ids)
            cluster.remove_node(victim, allow_graceful=False)
            killed.append(victim.node_id)

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
    hook, killed = _kill_a_node_with_a_restore_actor(cluster, workers)

    summary = restore_archive(job, hook)

    assert killed, "no node was killed: the test proved nothing"
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
