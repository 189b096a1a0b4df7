"""`Mesh`: istiod, the WorkloadEntry registry and the ingress gateway, started on the lab's control
plane and node, plus the gateway Service's ports (one per topology's Gateway server)."""

import json
from pathlib import Path

from lab.host.procs import ProcessGroup, wait_until
from lab.kube.controlplane import ControlPlane
from lab.kube.mesh import admin
from lab.kube.mesh.gateway import (
    GATEWAY_LABELS,
    GATEWAY_NAME,
    GATEWAY_NAMESPACE,
    PROXY_ADMIN_PORT,
    PROXY_IMAGE,
    GatewayRunner,
    gateway_manifests,
)
from lab.kube.mesh.istiod import Istiod
from lab.kube.mesh.registry import WorkloadRegistry
from lab.kube.node.lifecycle import LabNode
from lab.kube.node.pods import PodRun


class Mesh:
    """istiod, the WorkloadEntry registry and the ingress gateway, on `node`'s control plane."""

    def __init__(self, plane: ControlPlane, group: ProcessGroup, node: LabNode, workdir: str | Path):
        self.plane, self.group, self.node = plane, group, node
        self.istiod = Istiod(plane, group, Path(workdir) / "istiod")
        self.registry = WorkloadRegistry(plane)
        self.gateway_ports: set[int] = set()

    def start(self, timeout: float = 90.0) -> "Mesh":
        self.plane.apply_istio_crds()
        self.istiod.start(timeout)
        self.node.listeners.append(self.registry)
        self.node.runners[PROXY_IMAGE] = GatewayRunner(self.istiod.xds_address)
        self.plane.create_namespace(GATEWAY_NAMESPACE)
        for manifest in gateway_manifests():
            self.plane.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))
        wait_until(lambda: self.gateway_run() is not None and self.gateway_run().ready, timeout,
                   "the ingress gateway's Envoy to be ready")
        return self

    def gateway_run(self) -> PodRun | None:
        return next((run for run in self.node.runs(GATEWAY_NAMESPACE)
                     if GATEWAY_LABELS.items() <= run.labels.items()), None)

    @property
    def admin_url(self) -> str:
        return f"http://{self.gateway_run().address}:{PROXY_ADMIN_PORT}"

    def publish_port(self, port: int) -> None:
        """List `port` on the gateway's Service, as the gateway chart lists 80 and 443: a Gateway
        server on a port its Service lacks is unreachable on a cluster (istioctl's IST0162)."""
        self.gateway_ports.add(port)
        service = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": GATEWAY_NAME, "namespace": GATEWAY_NAMESPACE, "labels": GATEWAY_LABELS},
                   "spec": {"selector": GATEWAY_LABELS, "ports": [
                       {"name": f"http-{p}", "port": p, "targetPort": p, "protocol": "TCP"}
                       for p in sorted(self.gateway_ports)]}}
        self.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=json.dumps(service))

    def unpublish_port(self, port: int) -> None:
        if port in self.gateway_ports:
            self.gateway_ports.discard(port)
            if self.gateway_ports:
                self.publish_port(next(iter(self.gateway_ports)))
            else:
                self.plane.kubectl("delete", "service", GATEWAY_NAME, "--namespace", GATEWAY_NAMESPACE,
                                   "--ignore-not-found", check=False)

    # Reading the gateway's Envoy

    def stats(self) -> dict[str, int]:
        return admin.stats(self.admin_url)

    def config_dump(self) -> dict:
        return admin.config_dump(self.admin_url)

    def endpoints(self, cluster: str) -> dict[str, str]:
        return admin.endpoints(self.admin_url, cluster)
