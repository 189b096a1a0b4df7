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
# Istio CNI's node agent keeps its sockets and the plugin's log here (a host path fixed in its
# chart); no other Istio CNI can share the node, so teardown removes it.
ISTIO_CNI_RUN_DIR = Path("/var/run/istio-cni")
# A cluster's files and folders (Layout attributes), under its folder. `record` is what the host
# looked like before (sysctls, the nft ruleset), restored at teardown.
CLUSTER_FILES = {
    "record": "host-record.json", "daemon_pid": "daemon.pid", "ready_file": "ready.json", "logs": "logs",
    "controlplane": "controlplane", "containerd": "containerd", "containerd_socket": "containerd/containerd.sock",
    "kubelet": "kubelet", "cni": "cni"}


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

    def __getattr__(self, name: str) -> Path:
        """A file or folder of the cluster's, under dir (CLUSTER_FILES)."""
        if name in CLUSTER_FILES:
            return self.dir / CLUSTER_FILES[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")
