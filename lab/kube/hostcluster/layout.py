"""Names, addresses and folders of one host cluster: everything the steps agree on."""

from dataclasses import dataclass
from pathlib import Path

# The node's address lives on a bridge with no ports (the kubelet refuses a loopback node IP);
# the API server, the kubelet, kube-proxy and CoreDNS bind it, and Pods reach it through the
# CNI bridge's gateway.
NODE_IP = "10.250.0.1"
POD_CIDR = "10.244.0.0/24"
POD_GATEWAY = "10.244.0.1"
CLUSTER_CIDR = "10.244.0.0/16"
API_PORT = 6443
KUBELET_PORT = 10250
# Ports the node binds on loopback (health and metrics); taken ones stop cluster-up early.
KUBELET_HEALTHZ_PORT = 10248
KUBE_PROXY_HEALTHZ_PORT = 10256
KUBE_PROXY_METRICS_PORT = 10249
COREDNS_HEALTH_PORT = 10054
NODE_BRIDGE = "rl-node0"
POD_BRIDGE = "rl-cni0"
CNI_NETWORK = "resilience-lab"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
DEFAULT_STATE_ROOT = Path("/var/lib/resilience-lab")


@dataclass(frozen=True)
class Layout:
    """Where one named host cluster keeps its state (root-owned, outside the repo: containerd's
    snapshots need a real filesystem with overlay support)."""
    name: str
    state_root: Path = DEFAULT_STATE_ROOT

    @property
    def dir(self) -> Path:
        return self.state_root / self.name

    @property
    def node_name(self) -> str:
        return f"{self.name}-node"

    @property
    def context(self) -> str:
        """The kubeconfig context `make cluster-up CLUSTER=host` creates (kind: kind-NAME)."""
        return f"host-{self.name}"

    # Files and folders, all under dir.
    @property
    def record(self) -> Path:
        """What the host looked like before: sysctls and the nft ruleset (restored at teardown)."""
        return self.dir / "host-record.json"

    @property
    def daemon_pid(self) -> Path:
        return self.dir / "daemon.pid"

    @property
    def ready_file(self) -> Path:
        return self.dir / "ready.json"

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    @property
    def controlplane(self) -> Path:
        return self.dir / "controlplane"

    @property
    def containerd(self) -> Path:
        return self.dir / "containerd"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd / "containerd.sock"

    @property
    def kubelet(self) -> Path:
        return self.dir / "kubelet"

    @property
    def cni(self) -> Path:
        return self.dir / "cni"
