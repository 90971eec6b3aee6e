"""A real two-node Ray cluster (`ray start --head` + `ray start --address`) and the API beside it.

The API is `rldojo serve` pointed at the head's dashboard (`RLDOJO_RAY_ADDRESS`) with the
cluster's token; its storage root is a directory both nodes see (they share this machine).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.nodes import LocalCluster
from tests.service.conftest import Server


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    # A short root: Ray's unix socket paths must stay under ~107 characters.
    root = Path(tempfile.mkdtemp(prefix="rldojo-nodes-"))
    running = LocalCluster(root)
    try:
        running.start_head()
        running.add_worker()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def api(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("rldojo-cluster-api")
    running = Server(data_dir)
    running.env.update(
        RLDOJO_RAY_ADDRESS=cluster.dashboard,
        RLDOJO_RAY_AUTH_TOKEN=cluster.token,
        RLDOJO_STORAGE_ROOT=str(cluster.root / "shared-storage"),
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
