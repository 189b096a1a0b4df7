"""metrics-server (sigs.k8s.io/metrics-server, from `make control-plane`) for the lab: the
`metrics.k8s.io` API the HPA controller reads, served through the API server's aggregation layer
from the lab node's kubelet endpoint (`/metrics/resource`, lab/kube/node/kubelet_endpoint.py), exactly as on a cluster.

Two lab specifics: metrics-server runs as a process, so the APIService points at an ExternalName
Service (`localhost`), which the aggregator resolves as a host name; and it scrapes the node's
endpoint with the lab's admin credentials (a client certificate the node checks), not a
ServiceAccount of its own.
"""

import json
from pathlib import Path

from lab.host import binaries
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, wait_until
from lab.kube.controlplane import ControlPlane

# metrics-server's lowest resolution: a Pod's CPU rate is the change over one scrape interval.
METRIC_RESOLUTION_SECONDS = 10


class MetricsServer:
    def __init__(self, plane: ControlPlane, group: ProcessGroup, workdir: Path):
        self.plane, self.group, self.workdir = plane, group, Path(workdir)
        self.port = free_port()

    def start(self, timeout: float = 90.0) -> "MetricsServer":
        self.workdir.mkdir(parents=True, exist_ok=True)
        kubeconfig = str(self.plane.admin_kubeconfig)
        self.proc = self.group.start("metrics-server", [
            binaries.control_plane("metrics-server"), "--kubeconfig", kubeconfig,
            "--authentication-kubeconfig", kubeconfig, "--authorization-kubeconfig", kubeconfig,
            "--bind-address", LOOPBACK, "--secure-port", str(self.port), "--cert-dir", str(self.workdir / "certs"),
            "--kubelet-use-node-status-port", "--kubelet-preferred-address-types", "InternalIP",
            # The node's serving certificate is the lab CA's; metrics-server's CA check wants a kubelet's.
            "--kubelet-insecure-tls", f"--metric-resolution={METRIC_RESOLUTION_SECONDS}s",
            "--kubelet-request-timeout=5s", "--v=1"])
        for manifest in self.manifests():
            self.plane.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))
        wait_until(self.available, timeout, "the metrics.k8s.io APIService to be Available", interval=0.5,
                   proc=self.proc)
        return self

    def manifests(self) -> list[dict]:
        service = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                   "spec": {"type": "ExternalName", "externalName": "localhost",
                            "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]}}
        api = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
               "metadata": {"name": "v1beta1.metrics.k8s.io"},
               "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                        "versionPriority": 100, "insecureSkipTLSVerify": True,  # metrics-server's self-signed cert
                        "service": {"namespace": "kube-system", "name": "metrics-server", "port": self.port}}}
        return [service, api]

    def available(self) -> bool:
        result = self.plane.kubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "json", check=False)
        if result.returncode != 0:
            return False
        conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)
