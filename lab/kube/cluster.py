"""`LabCluster`: the lab's Kubernetes and Istio on loopback, as one thing to start and stop: the
control plane, the lab's node, metrics-server, istiod and the ingress gateway. One serves many
topologies (lab/workloads/), one namespace each."""

from pathlib import Path

from lab.host.procs import ProcessGroup
from lab.kube.controlplane import ControlPlane
from lab.kube.mesh.mesh import Mesh
from lab.kube.metrics_server import MetricsServer
from lab.kube.node.lifecycle import DEFAULT_RESTART_DELAY, LabNode

# The HPA controller's loop every 5 s (the default 15 s), so that short lab runs see several
# decisions; everything else about its algorithm is the controller's own.
LAB_CONTROLLER_ARGS = ("--horizontal-pod-autoscaler-sync-period=5s",)


class LabCluster:
    def __init__(self, workdir: str | Path, restart_delay: float = DEFAULT_RESTART_DELAY,
                 controller_args: tuple[str, ...] = LAB_CONTROLLER_ARGS):
        self.workdir = Path(workdir)
        self.restart_delay = restart_delay
        self.controller_args = controller_args
        self.group = ProcessGroup(self.workdir / "logs")

    def start(self) -> "LabCluster":
        try:
            self.plane = ControlPlane(self.workdir / "kubernetes", self.group,
                                      controller_args=self.controller_args).start()
            self.node = LabNode(self.plane, self.group, restart_delay=self.restart_delay,
                                state_dir=self.workdir / "replicas").start()
            self.metrics = MetricsServer(self.plane, self.group, self.workdir / "metrics-server").start()
            self.mesh = Mesh(self.plane, self.group, self.node, self.workdir).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        node = getattr(self, "node", None)
        if node is not None:
            node.stop(grace=2)
        self.group.stop_all(grace=5)

    def __enter__(self) -> "LabCluster":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
