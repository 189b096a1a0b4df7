"""Bring-up of the host cluster as ordered steps (as kind's create and Kubernetes'
hack/local-up-cluster.sh): record the host, the node's network, the control plane, containerd
with the images, the kubelet, kube-proxy, CoreDNS, metrics-server. Teardown stops the processes
newest first, then sweeps what they leave (host.sweep).

    with ProcessGroup(layout.logs) as group:
        cluster = HostCluster(layout, group).start(archives)
        cluster.plane.kubectl("get", "nodes")
    cluster.stop()
"""

import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab.host import binaries
from lab.host.procs import ProcessGroup, wait_until
from lab.kube.controlplane import SERVICE_CIDR, ControlPlane
from lab.kube.hostcluster import host, preflight
from lab.kube.hostcluster.layout import API_PORT, CLUSTER_CIDR, ISTIO_CNI_RUN_DIR, NODE_IP, PAUSE_IMAGE, Layout
from lab.kube.hostcluster.node import CoreDNS, Kubelet, KubeProxy, node_ready
from lab.kube.hostcluster.runtime import Containerd
from lab.kube.hostcluster.storage import LocalPathProvisioner
from lab.kube.metrics_server import MetricsServer


class HostCluster:
    def __init__(self, layout: Layout, group: ProcessGroup, *, log: Callable[[str], None] = print,
                 controller_args: Sequence[str] = ()):
        self.layout, self.group, self.log = layout, group, log
        self.controller_args = list(controller_args)
        self.cgroup_root = f"resilience-lab-{layout.name}"
        self.timings: dict[str, float] = {}

    def _step(self, what: str, action: Callable[[], object]):
        self.log(f"host cluster: {what}")
        start = time.monotonic()
        result = action()
        self.timings[what] = round(time.monotonic() - start, 2)
        return result

    def start(self, archives: Sequence[Path] = ()) -> "HostCluster":
        """Preflight first (nothing changed when it fails), then every step; a failing step
        undoes all the earlier ones before the error goes up."""
        preflight.check_root()
        leftovers = self.sweep()  # a killed run's leftovers, recorded state included
        if leftovers:
            self.log(f"host cluster: cleaned up after an earlier run: {', '.join(leftovers[:8])}")
        preflight.check_all()
        try:
            self._bring_up(archives)
        except BaseException:
            self.stop()
            raise
        return self

    def _bring_up(self, archives: Sequence[Path]) -> None:
        layout = self.layout
        layout.dir.mkdir(parents=True, exist_ok=True)
        self._step("record sysctls and the nftables ruleset", lambda: host.record(layout))
        self._step(f"node address {NODE_IP} on a port-less bridge", self._network)
        self._step("cgroup root", lambda: host.create_cgroups(self.cgroup_root))
        self.plane = self._step(f"control plane (etcd, kube-apiserver on {NODE_IP}:{API_PORT}, controllers)",
                                lambda: ControlPlane(layout.controlplane, self.group, address=NODE_IP,
                                                     api_port=API_PORT, node_authorizer=True,
                                                     controller_args=self.controller_args).start())
        self.containerd = self._step("containerd", lambda: Containerd(layout, self.group).start())
        # The images go in beside the next steps (they need none of them); the cluster is ready
        # once they are all in.
        with ThreadPoolExecutor(max_workers=1) as background:
            images = background.submit(self._step, f"images from {len(archives)} archives",
                                       lambda: self.load_images(archives))
            self._step("kubelet", lambda: Kubelet(layout, self.plane, self.group, self.cgroup_root).start())
            self._step("node Ready", lambda: wait_until(lambda: node_ready(self.plane, layout.node_name), 60,
                                                        f"node {layout.node_name} Ready", interval=0.2))
            self._step("kube-proxy", lambda: KubeProxy(layout, self.plane, self.group).start())
            self._step("CoreDNS", lambda: CoreDNS(layout, self.plane, self.group).start())
            self._step("metrics-server", lambda: MetricsServer(self.plane, self.group, layout.dir / "metrics").start())
            self._step("Istio CRDs", lambda: self.plane.apply_istio_crds())
            images.result()
        # Its helper Pods need the base image.
        self._step("local-path-provisioner", lambda: LocalPathProvisioner(layout, self.plane, self.group).start())

    def _network(self) -> None:
        host.create_node_bridge([SERVICE_CIDR, CLUSTER_CIDR])
        host.keep_pods_inside(CLUSTER_CIDR, [CLUSTER_CIDR, SERVICE_CIDR, f"{NODE_IP}/32"])
        # Service traffic between Pods on one bridge passes netfilter only with these on.
        for key in ("net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"):
            host.write_sysctl(key, "1")

    def load_images(self, archives: Sequence[Path]) -> list[str]:
        added = self.containerd.import_archives(list(archives))
        if not any(PAUSE_IMAGE in image for image in self.containerd.images()):
            raise host.HostError(f"the sandbox image {PAUSE_IMAGE} is not in the node's containerd: run `make images`")
        return added

    def stop(self) -> list[str]:
        self.group.stop_all(grace=5)
        return self.sweep()

    def sweep(self) -> list[str]:
        leftovers = host.sweep(self.layout, self.cgroup_root)
        # Everything else of the run (etcd, containerd's store, logs) goes with it, except the logs
        # of a failed run: they stay for a person to read until the next run.
        for child in ("controlplane", "containerd", "kubelet", "cni", "kube-proxy", "coredns", "metrics", "local-path"):
            shutil.rmtree(self.layout.dir / child, ignore_errors=True)
        shutil.rmtree(ISTIO_CNI_RUN_DIR, ignore_errors=True)
        return leftovers

    @property
    def kubeconfig(self) -> Path:
        return self.plane.admin_kubeconfig

    def describe(self) -> dict:
        return {"name": self.layout.name, "context": self.layout.context, "server": self.plane.url,
                "node": self.layout.node_name, "kubeconfig": str(self.kubeconfig), "timings": self.timings,
                "kubernetes": binaries.control_plane_versions()["KUBE_VERSION"]}
