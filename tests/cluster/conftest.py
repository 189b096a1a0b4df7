"""Fixtures of the cluster tests: one real control plane for the session (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler from `make control-plane`, Istio's CRDs applied), a
namespace per test that enforces PodSecurity `restricted`, Helm and kubectl bound to that server,
and the lab's node (lab/kube/node/) for tests that need Pods to run.
"""

import re
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import chartlib
import pytest

from lab.host.procs import ProcessGroup, wait_for_value
from lab.kube.controlplane import ControlPlane
from lab.kube.mesh.gateway import GATEWAY_NAMESPACE
from lab.kube.node.lifecycle import LabNode
from lab.workloads.helm import run_helm
from tests.conftest import require_control_plane

HELM_TIMEOUT = 180
# client-go prints each warning of the API server (PodSecurity, deprecations, unknown fields) on
# stderr through its warning handler; Helm and kubectl both do.
WARNING_LINE = re.compile(r"Warning:|warnings\.go")


def server_warnings(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if WARNING_LINE.search(line)]


def assert_no_warnings(result: subprocess.CompletedProcess) -> None:
    warnings = server_warnings(result)
    assert not warnings, "the API server warned:\n" + "\n".join(warnings)


@dataclass
class Cluster:
    """The session's control plane plus the tools the tests drive it with."""
    plane: ControlPlane

    def helm(self, *args: str, check: bool = True, kubeconfig: Path | None = None) -> subprocess.CompletedProcess:
        result = run_helm(*args, env=self.plane.env(kubeconfig), timeout=HELM_TIMEOUT, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}")
        return result

    def install(self, release: str, namespace: str, chart: str | Path, *values_args: str,
                upgrade: bool = False) -> subprocess.CompletedProcess:
        """`helm install` (or `upgrade --install --reset-values`) of `chart` with `values_args`
        (-f FILE, --set ...), without waiting for Pods, no warning from the server tolerated."""
        verb = ["upgrade", "--install", "--reset-values"] if upgrade else ["install"]
        result = self.helm(*verb, release, str(chart), "--namespace", namespace, *values_args)
        assert_no_warnings(result)
        return result

    warnings = staticmethod(server_warnings)

    def kubectl(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.plane.kubectl(*args, **kwargs)

    def get(self, *args: str) -> dict:
        return self.plane.get(*args)

    def items(self, kind: str, namespace: str, selector: str | None = None) -> list[dict]:
        args = [kind, "--namespace", namespace] + (["-l", selector] if selector else [])
        return self.get(*args)["items"]

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.25,
                 explain: Callable[[], str] | None = None):
        """Poll `predicate` (API reads) until it returns something truthy; return that. On a
        timeout the error carries `explain()`: what a person needs to see why it never came."""
        return wait_for_value(predicate, timeout, what, interval, explain)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Cluster:
    require_control_plane()
    workdir = tmp_path_factory.mktemp("control-plane")
    with ProcessGroup(workdir / "logs") as group:
        # The HPA controller every 3 s (the default 15 s) so that its verdicts come quickly.
        plane = ControlPlane(workdir, group, controller_args=["--horizontal-pod-autoscaler-sync-period=3s"]).start()
        # Istio's CRDs as the offline chart tests validate against them, and the namespace of
        # Istio's ingress gateway, as `make istio-install` leaves them: the webgatos chart puts
        # its gateway AuthorizationPolicy there when its Istio resources are on.
        plane.apply_istio_crds(chartlib.istio_crds_path())
        plane.kubectl("create", "namespace", GATEWAY_NAMESPACE)
        yield Cluster(plane)


@pytest.fixture(scope="session")
def lab_node(cluster) -> LabNode:
    """The lab's node, for tests whose Pods must run (they tolerate its taint via lab/values/)."""
    node = LabNode(cluster.plane, cluster.plane.group, restart_delay=0.5,
                   state_dir=cluster.plane.workdir / "replicas").start()
    yield node
    node.stop(grace=2)


@pytest.fixture
def namespace(cluster, request) -> str:
    """A fresh namespace enforcing PodSecurity `restricted`, deleted after the test."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:5]}"
    cluster.plane.create_namespace(name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
