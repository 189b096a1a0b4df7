"""What cluster-up checks before it changes anything: root, the kernel's features, the programs,
and that the node's address, links and ports are free. Each failure is one line naming the cause."""

import os
import shutil
import subprocess
from pathlib import Path

from lab.host import binaries
from lab.host.procs import port_in_use
from lab.kube.hostcluster import host
from lab.kube.hostcluster.layout import (
    API_PORT,
    COREDNS_HEALTH_PORT,
    KUBE_PROXY_HEALTHZ_PORT,
    KUBE_PROXY_METRICS_PORT,
    KUBELET_HEALTHZ_PORT,
    KUBELET_PORT,
    NODE_BRIDGE,
    NODE_IP,
    POD_BRIDGE,
)
from lab.kube.hostcluster.runtime import cni_bin_dir

# program -> the Debian package that brings it
HOST_PROGRAMS = {"containerd": "containerd", "runc": "runc", "ctr": "containerd", "ip": "iproute2",
                 "nft": "nftables", "iptables": "iptables", "conntrack": "conntrack"}
NODE_PROGRAMS = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "etcd", "kubelet",
                 "kube-proxy", "coredns", "metrics-server", "local-path-provisioner"]
CGROUP_CONTROLLERS = ["cpu", "cpuacct", "memory", "pids", "devices", "freezer"]
PORTS = {API_PORT: "kube-apiserver", KUBELET_PORT: "kubelet", KUBELET_HEALTHZ_PORT: "kubelet healthz",
         KUBE_PROXY_HEALTHZ_PORT: "kube-proxy healthz", KUBE_PROXY_METRICS_PORT: "kube-proxy metrics",
         COREDNS_HEALTH_PORT: "CoreDNS health", 53: "CoreDNS"}


class PreflightError(RuntimeError):
    """The host cannot run the cluster; the message is one line naming the cause."""


def check_root() -> None:
    if os.geteuid() != 0:
        raise PreflightError("CLUSTER=host needs root (containerd, runc, the kubelet and kube-proxy change the "
                             "host): run it as root, or use CLUSTER=kind or minikube")


def check_kernel() -> None:
    if "overlay" not in Path("/proc/filesystems").read_text():
        subprocess.run(["modprobe", "overlay"], capture_output=True)
        if "overlay" not in Path("/proc/filesystems").read_text():
            raise PreflightError("the kernel has no overlay filesystem (containerd's overlayfs snapshotter needs it)")
    missing = [c for c in CGROUP_CONTROLLERS if not (host.CGROUP_ROOT / c / "cgroup.procs").exists()]
    if missing:
        raise PreflightError(f"cgroup v1 hierarchies missing under /sys/fs/cgroup: {', '.join(missing)} "
                             "(the host cluster runs on cgroup v1 hosts; use CLUSTER=kind elsewhere)")
    if not Path("/proc/sys/net/bridge").exists():
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True)
        if not Path("/proc/sys/net/bridge").exists():
            raise PreflightError("the kernel has no br_netfilter (/proc/sys/net/bridge): Service traffic between "
                                 "Pods on one bridge needs it")


def check_programs() -> None:
    missing = [f"{program} (apt-get install {package})" for program, package in HOST_PROGRAMS.items()
               if not shutil.which(program)]
    if missing:
        raise PreflightError(f"missing: {', '.join(missing)}")
    try:
        cni_bin_dir()
        for program in NODE_PROGRAMS:
            binaries.control_plane(program)
    except (binaries.MissingBinary, host.HostError) as error:
        raise PreflightError(str(error)) from None


def check_free() -> None:
    holder = host.address_in_use(NODE_IP)
    if holder:
        raise PreflightError(f"the node address {NODE_IP} is already on link {holder} (another host cluster? "
                             "`make cluster-down CLUSTER=host`)")
    for link in (NODE_BRIDGE, POD_BRIDGE):
        if host.link_exists(link):
            raise PreflightError(f"link {link} already exists (another host cluster? `make cluster-down CLUSTER=host`)")
    for port, user in PORTS.items():
        if port_in_use(port, "0.0.0.0"):
            raise PreflightError(f"port {port} ({user}) is already in use on this host")


def check_all() -> None:
    check_root()
    check_kernel()
    check_programs()
    check_free()
