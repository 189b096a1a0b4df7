"""The node's Kubernetes agents: a real kubelet on containerd, kube-proxy (iptables mode) and
CoreDNS, each a process of the cluster's ProcessGroup with its own client certificate."""

import json

import yaml

from lab.host import binaries
from lab.host.procs import LOOPBACK, ProcessGroup, http_status, wait_until
from lab.kube.controlplane import CLUSTER_DOMAIN, ControlPlane, write_kubeconfig
from lab.kube.hostcluster.layout import (
    CLUSTER_CIDR,
    COREDNS_HEALTH_PORT,
    KUBE_PROXY_HEALTHZ_PORT,
    KUBE_PROXY_METRICS_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    NODE_IP,
    POD_CIDR,
    Layout,
)


class Kubelet:
    def __init__(self, layout: Layout, plane: ControlPlane, group: ProcessGroup, cgroup_root: str):
        self.layout, self.plane, self.group, self.cgroup_root = layout, plane, group, cgroup_root

    def config(self) -> dict:
        node = self.layout.node_name
        serving = self.plane.ca.issue("kubelet-serving", f"system:node:{node}", ["system:nodes"],
                                      server_names=[NODE_IP, node], client=False)
        root = self.layout.kubelet
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            # These machines mount cgroup v1 only; the kubelet refuses it unless told.
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupRoot": f"/{self.cgroup_root}",
            "containerRuntimeEndpoint": f"unix://{self.layout.containerd_socket}",
            "address": NODE_IP, "port": KUBELET_PORT, "readOnlyPort": 0,
            "healthzBindAddress": LOOPBACK, "healthzPort": KUBELET_HEALTHZ_PORT,
            "tlsCertFile": str(serving.cert), "tlsPrivateKeyFile": str(serving.key),
            "authentication": {"x509": {"clientCAFile": str(self.plane.ca.cert_path)},
                               "webhook": {"enabled": True}, "anonymous": {"enabled": False}},
            "authorization": {"mode": "Webhook"},
            "clusterDNS": [NODE_IP], "clusterDomain": CLUSTER_DOMAIN, "resolvConf": "",
            "podCIDR": POD_CIDR, "failSwapOn": False, "podLogsDir": str(root / "pod-logs"),
            "serializeImagePulls": False, "syncFrequency": "10s", "fileCheckFrequency": "10s",
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
        }

    def start(self, timeout: float = 60.0) -> "Kubelet":
        root = self.layout.kubelet
        root.mkdir(parents=True, exist_ok=True)
        node = self.layout.node_name
        credential = self.plane.ca.issue("kubelet", f"system:node:{node}", ["system:nodes"])
        kubeconfig = write_kubeconfig(root / "kubelet.kubeconfig", self.plane.url, self.plane.ca.cert_path,
                                      user=f"system:node:{node}", credential=credential)
        config = root / "config.yaml"
        config.write_text(yaml.safe_dump(self.config()))
        self.proc = self.group.start("kubelet", [
            binaries.control_plane("kubelet"), "--config", str(config), "--kubeconfig", str(kubeconfig),
            "--root-dir", str(root / "root"), "--cert-dir", str(root / "pki"), "--node-ip", NODE_IP,
            "--hostname-override", node, "--v=1"])
        wait_until(lambda: http_status(f"http://{LOOPBACK}:{KUBELET_HEALTHZ_PORT}/healthz") == 200, timeout,
                   "kubelet /healthz", interval=0.2, proc=self.proc)
        return self


class KubeProxy:
    def __init__(self, layout: Layout, plane: ControlPlane, group: ProcessGroup):
        self.layout, self.plane, self.group = layout, plane, group

    def start(self, timeout: float = 60.0) -> "KubeProxy":
        folder = self.layout.dir / "kube-proxy"
        folder.mkdir(parents=True, exist_ok=True)
        # system:kube-proxy is bound to system:node-proxier by the API server's defaults.
        credential = self.plane.ca.issue("kube-proxy", "system:kube-proxy")
        kubeconfig = write_kubeconfig(folder / "kube-proxy.kubeconfig", self.plane.url, self.plane.ca.cert_path,
                                      user="system:kube-proxy", credential=credential)
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
            "mode": "iptables", "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": self.layout.node_name, "bindAddress": NODE_IP, "clusterCIDR": CLUSTER_CIDR,
            "healthzBindAddress": f"{LOOPBACK}:{KUBE_PROXY_HEALTHZ_PORT}",
            "metricsBindAddress": f"{LOOPBACK}:{KUBE_PROXY_METRICS_PORT}",
            # NodePorts on the node's address only (not loopback: no route_localnet needed).
            "nodePortAddresses": [f"{NODE_IP}/32"],
            # Zero leaves the host's conntrack settings as they are.
            "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        self.proc = self.group.start("kube-proxy", [
            binaries.control_plane("kube-proxy"), "--config", str(folder / "config.yaml"), "--v=1"])
        wait_until(lambda: http_status(f"http://{LOOPBACK}:{KUBE_PROXY_HEALTHZ_PORT}/healthz") == 200, timeout,
                   "kube-proxy /healthz", interval=0.2, proc=self.proc)
        return self


COREDNS_RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "system:coredns"},
     "rules": [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                "verbs": ["list", "watch"]},
               {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:coredns"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
     "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}]},
]


class CoreDNS:
    """Cluster DNS on the node's address (the kubelet's clusterDNS), reading Services and Pods with
    its own least-privilege identity. No upstream: these machines resolve nothing outside."""

    def __init__(self, layout: Layout, plane: ControlPlane, group: ProcessGroup):
        self.layout, self.plane, self.group = layout, plane, group

    def start(self, timeout: float = 60.0) -> "CoreDNS":
        folder = self.layout.dir / "coredns"
        folder.mkdir(parents=True, exist_ok=True)
        for manifest in COREDNS_RBAC:
            self.plane.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))
        credential = self.plane.ca.issue("coredns", "system:coredns")
        kubeconfig = write_kubeconfig(folder / "coredns.kubeconfig", self.plane.url, self.plane.ca.cert_path,
                                      user="system:coredns", credential=credential)
        corefile = folder / "Corefile"
        corefile.write_text(f""".:53 {{
    bind {NODE_IP}
    errors
    health {LOOPBACK}:{COREDNS_HEALTH_PORT}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} lab
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 5
}}
""")
        self.proc = self.group.start("coredns", [binaries.control_plane("coredns"), "-conf", str(corefile)],
                                     cwd=folder)
        wait_until(lambda: http_status(f"http://{LOOPBACK}:{COREDNS_HEALTH_PORT}/health") == 200, timeout,
                   "CoreDNS /health", interval=0.2, proc=self.proc)
        return self


def node_ready(plane: ControlPlane, name: str) -> bool:
    result = plane.kubectl("get", "node", name, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
