"""Fixtures of the real-node tier: one host cluster for the session (lab/kube/hostcluster/: a real
kubelet on containerd and runc, the CNI bridge, kube-proxy, CoreDNS, metrics-server, next to the
lab's control plane), the images of `make images` imported into it, a namespace per test that
enforces PodSecurity `restricted`, and Helm and kubectl bound to it. Nothing is faked: Pods are
containers of the charts' own images.

The tier needs root and a Linux host with cgroup v1 (as CI's machines). Elsewhere it is skipped,
except in CI, where a missing piece fails. The session's teardown checks that the host is as it
was: no link, mount, cgroup, rule or changed sysctl left behind.
"""

import json
import os
import re
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.host.procs import ProcessGroup, wait_for_value
from lab.kube.controlplane import RESTRICTED_LABELS
from lab.kube.hostcluster import host, preflight
from lab.kube.hostcluster.cluster import HostCluster
from lab.kube.hostcluster.layout import NODE_BRIDGE, POD_BRIDGE, Layout
from lab.kube.hostcluster.runtime import ISTIO_CNI_VALUES_FILE, image_archives
from lab.kube.mesh.gateway import GATEWAY_NAMESPACE
from lab.kube.mesh.istiod import ISTIO_NAMESPACE
from lab.workloads import istio as mesh_install
from lab.workloads.helm import run_helm

IN_CI = bool(os.environ.get("CI"))
HELM_TIMEOUT = 300
TIER_NAME = "pytest"
SELECTOR_WEB = "app.kubernetes.io/component=web"


def require_host_cluster() -> None:
    """Skip (fail in CI) when this machine cannot run the host cluster, with the reason."""
    try:
        preflight.check_root()
        preflight.check_kernel()
        preflight.check_programs()
        if not image_archives():
            raise preflight.PreflightError("no image archives in .cache/images/archives: run `make images`")
    except preflight.PreflightError as missing:
        if IN_CI:
            raise
        pytest.skip(f"host cluster: {missing}")


def host_state() -> dict:
    """What a host cluster may change, as comparable data."""
    return {"links": sorted(link for link in os.listdir("/sys/class/net")
                            if link in (NODE_BRIDGE, POD_BRIDGE) or link.startswith("veth")),
            "mounts": host.mounts_under(Layout(TIER_NAME).dir),
            "cgroups": [str(d) for d in host.cgroup_dirs(f"resilience-lab-{TIER_NAME}") if d.exists()],
            "nft": host.run("nft", "list", "ruleset"), "sysctls": host.read_sysctls()}


@dataclass
class HostTier:
    cluster: HostCluster

    @property
    def plane(self):
        return self.cluster.plane

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120,
                input_text: str | None = None) -> subprocess.CompletedProcess:
        return self.plane.kubectl(*args, check=check, timeout=timeout, input_text=input_text)

    def get(self, *args: str) -> dict:
        return self.plane.get(*args)

    def helm(self, *args: str, check: bool = True, timeout: float = HELM_TIMEOUT) -> subprocess.CompletedProcess:
        result = run_helm(*args, env=self.plane.env(), timeout=timeout + 30, check=False)
        if check and result.returncode != 0:
            namespace = args[args.index("--namespace") + 1] if "--namespace" in args else None
            why = self.explain(namespace) if namespace else ""
            raise AssertionError(f"helm {' '.join(args)} exited {result.returncode}:\n{result.stderr}{result.stdout}"
                                 f"\n{why}")
        return result

    def install(self, release: str, namespace: str, chart: str | Path, *values_args: str,
                wait: bool = True) -> subprocess.CompletedProcess:
        """`helm install --wait`: every Pod Ready (the kubelet's probes) or an error that shows
        why, with the containers' own logs."""
        wait_args = ["--wait", "--timeout", f"{HELM_TIMEOUT}s"] if wait else []
        return self.helm("install", release, str(chart), "--namespace", namespace, *wait_args, *values_args)

    def pods(self, namespace: str, selector: str | None = None) -> list[dict]:
        args = ["pods", "--namespace", namespace] + (["-l", selector] if selector else [])
        return self.get(*args)["items"]

    def ready_pods(self, namespace: str, selector: str | None = None) -> list[dict]:
        return [p for p in self.pods(namespace, selector) if not p["metadata"].get("deletionTimestamp")
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]

    def explain(self, namespace: str) -> str:
        """Each Pod's phase, readiness, container states and logs, and the namespace's events."""
        lines = [f"Pods in {namespace}:"]
        for pod in self.pods(namespace):
            name = pod["metadata"]["name"]
            lines.append(f"  {name}: {pod['status'].get('phase')}")
            for status in pod["status"].get("containerStatuses", []) + pod["status"].get("initContainerStatuses", []):
                lines.append(f"    {status['name']}: ready={status.get('ready')} restarts={status.get('restartCount')}"
                             f" state={json.dumps(status.get('state'))}")
                for previous in ("--previous", None):
                    logs = self.kubectl("logs", name, "-c", status["name"], "--namespace", namespace, "--tail", "25",
                                        *([previous] if previous else []), check=False)
                    if logs.returncode == 0 and logs.stdout.strip():
                        lines.append(f"    log of {status['name']}{' (previous)' if previous else ''}:")
                        lines += [f"      | {line}" for line in logs.stdout.splitlines()]
        events = self.kubectl("get", "events", "--namespace", namespace, "--sort-by", ".lastTimestamp", check=False)
        lines.append("Events:")
        lines += [f"  {line}" for line in events.stdout.splitlines()[-25:]]
        return "\n".join(lines)

    def wait_for(self, predicate: Callable[[], object], timeout: float, what: str, namespace: str | None = None,
                 interval: float = 0.5):
        """Poll `predicate` until truthy and return its value; a timeout shows the namespace."""
        return wait_for_value(predicate, timeout, what, interval,
                              explain=(lambda: self.explain(namespace)) if namespace else None)

    def service_url(self, namespace: str, name: str, port: int = 80, replicas: int = 1) -> str:
        """The Service's ClusterIP (from the host, through kube-proxy's rules), once kube-proxy
        has programmed it: /healthz answered by `replicas` different Pods (their X-Replica)."""
        ip = self.get("service", name, "--namespace", namespace)["spec"]["clusterIP"]
        url, seen = f"http://{ip}:{port}", set()

        def answered() -> bool:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                    seen.add(response.headers.get("X-Replica"))
            except OSError:
                pass
            return len(seen) >= replicas
        self.wait_for(answered, 60, f"Service {name} answering from {replicas} Pods (seen: {seen})", namespace,
                      interval=0.1)
        return url


@pytest.fixture(scope="session")
def host_tier() -> HostTier:
    require_host_cluster()
    layout = Layout(TIER_NAME)
    before = host_state()
    with ProcessGroup(layout.logs) as group:
        # The HPA controller every 5 s (the default 15 s), so that its verdicts come quickly.
        cluster = HostCluster(layout, group, log=lambda line: None,
                              controller_args=["--horizontal-pod-autoscaler-sync-period=5s"])
        try:
            cluster.start(image_archives())
            # Istio's ingress gateway namespace, as `make istio-install` leaves it: the webgatos
            # chart puts its gateway AuthorizationPolicy there when its Istio resources are on.
            cluster.plane.kubectl("create", "namespace", GATEWAY_NAMESPACE)
            yield HostTier(cluster)
        finally:
            cluster.stop()
    after = host_state()
    assert after == before, "the host cluster left the host changed:\n" + "\n".join(
        f"{key}: before {before[key]!r}\n  after {after[key]!r}" for key in before if before[key] != after[key])


@dataclass
class IstioOnHost:
    install_seconds: float
    output: list[str]


@pytest.fixture(scope="session")
def istio(host_tier) -> IstioOnHost:
    """The pinned Istio on the tier's cluster, installed once by `make istio-install` (Istio CNI,
    istiod with its injection webhook, the ingress gateway) on the images of `make images`."""
    layout = host_tier.cluster.layout
    env = {**host_tier.plane.env(), "CLUSTER": "host", "CLUSTER_NAME": layout.name, "KUBE_CONTEXT": "lab",
           "ISTIO_CNI_VALUES": str(layout.cni / ISTIO_CNI_VALUES_FILE)}
    output: list[str] = []
    start = time.monotonic()
    try:
        mesh_install.install(env, echo=output.append)
    except mesh_install.IstioInstallFailed as failed:
        why = "\n".join(host_tier.explain(namespace) for namespace in (ISTIO_NAMESPACE, GATEWAY_NAMESPACE))
        raise AssertionError(f"{failed}\n{why}") from None
    seconds = time.monotonic() - start
    assert mesh_install.installed(host_tier.plane.env())
    return IstioOnHost(round(seconds, 1), output)


@pytest.fixture
def host_namespace(host_tier, request) -> str:
    """A fresh namespace enforcing PodSecurity `restricted`; its Pods are removed at once after
    the test (forced, as a node crash would), so the next test has the node's CPU."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:5]}"
    host_tier.plane.create_namespace(name)
    labels = host_tier.get("namespace", name)["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in RESTRICTED_LABELS.items())
    yield name
    host_tier.kubectl("delete", "pods", "--all", "--namespace", name, "--force", "--grace-period=0", check=False)
    host_tier.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(session, config, items):
    """The CLI's own clusters (test_lifecycle.py) come before the tier's, which lives until the
    session ends: both use the node's one address."""
    items.sort(key=lambda item: 0 if item.path.name == "test_lifecycle.py" else 1)
