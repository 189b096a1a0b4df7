"""Fixtures of the end-to-end tests: the lab's Kubernetes and Istio for the session (control
plane, the lab's node, istiod, the ingress gateway: lab.kube.cluster.LabCluster), and topologies on
it, one namespace each, removed when the test ends."""

import itertools
from contextlib import ExitStack

import pytest

from lab.kube.cluster import LabCluster
from lab.workloads.topology import TopologySpec, running
from tests.conftest import require_control_plane

# A killed container is back after half a second: tests wait for it, not for a demo's pacing.
TEST_RESTART_DELAY = 0.5


@pytest.fixture(scope="session")
def lab_cluster(tmp_path_factory) -> LabCluster:
    require_control_plane()
    with LabCluster(tmp_path_factory.mktemp("lab-cluster"), restart_delay=TEST_RESTART_DELAY) as cluster:
        yield cluster


@pytest.fixture
def topology(lab_cluster, tmp_path):
    """start(scenario, store="memory", replicas=2, values=None, drain_seconds=2) -> a running
    lab.workloads.topology.Topology (chart installed, replicas routed through the gateway)."""
    with ExitStack() as stack:
        names = itertools.count()

        def start(scenario: str, store: str = "memory", replicas: int = 2, values: dict | None = None,
                  drain_seconds: int = 2):
            spec = TopologySpec(store=store, replicas=replicas, scenario=scenario, drain_seconds=drain_seconds,
                                values=values or {})
            return stack.enter_context(running(spec, tmp_path / f"topology-{next(names)}", lab_cluster))
        yield start
