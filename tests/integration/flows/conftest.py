"""A real Prefect server (prefect_test_harness: a temporary API with SQLite) and local Ray for flow tests."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.testing.utilities import prefect_test_harness


@pytest.fixture(scope="session")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def artifacts():
    """``artifacts(flow_run_id)``: the run's artifacts by key, read back through the Prefect client."""

    def read(flow_run_id: UUID) -> dict[str, Any]:
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(
                artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
            )
        return {a.key: a for a in sorted(found, key=lambda a: a.created)}

    return read
