"""The end-to-end suite's control plane: one real etcd + kube-apiserver for the whole session.

`make e2e` builds the parts (`make cluster`) and runs this directory; `make test` does not collect it.
A missing part fails the session at the first test that asks for the cluster, saying what to run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit.cluster import Cluster, ClusterUnavailable, running_cluster
from tests.conftest import LEAK_SCAN


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A running control plane (RBAC on, TokenRequest, audit log), stopped when the session ends."""
    try:
        with running_cluster() as running:
            request.config.stash[LEAK_SCAN].add_value("cluster admin token", running.admin_token)
            yield running
    except ClusterUnavailable as error:
        pytest.fail(f"no control plane: {error}", pytrace=False)
