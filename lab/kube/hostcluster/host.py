"""What a host cluster changes on this machine, recorded before and undone after: kernel settings
(sysctls), the nftables ruleset (kube-proxy's, the CNI plugins' and the kubelet's rules, iptables
included: Debian's iptables is iptables-nft), links, mounts, cgroups and processes. Every undo is
idempotent, so the same sweep cleans up after a normal stop and after a killed run."""

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from lab.kube.hostcluster.layout import CNI_NETWORK, NODE_BRIDGE, NODE_IP, POD_BRIDGE, Layout

# Settings the kubelet (its kernel tunables), kube-proxy (conntrack, route_localnet) and the CNI
# bridge (forwarding) change, plus the bridge netfilter hook that Service traffic between Pods on
# one bridge needs.
SYSCTLS = [
    "vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward", "net.ipv4.conf.all.forwarding", "net.ipv4.conf.default.forwarding",
    "net.ipv4.conf.all.route_localnet", "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables", "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_conntrack_tcp_timeout_established", "net.netfilter.nf_conntrack_tcp_timeout_close_wait",
    "net.ipv4.conf.all.rp_filter",
]
CGROUP_ROOT = Path("/sys/fs/cgroup")


class HostError(RuntimeError):
    """The host is not fit for a cluster, or a host command failed; the message is one line."""


def run(*argv: str, check: bool = True, input_text: str | None = None, timeout: float = 60) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, input=input_text, timeout=timeout,
                            stdin=None if input_text is not None else subprocess.DEVNULL)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise HostError(f"{' '.join(argv)} exited {result.returncode}: {detail[-1] if detail else ''}")
    return result.stdout


def _sysctl_path(key: str) -> Path:
    return Path("/proc/sys") / key.replace(".", "/")


def read_sysctls(keys=SYSCTLS) -> dict[str, str]:
    values = {}
    for key in keys:
        with contextlib.suppress(OSError):
            values[key] = _sysctl_path(key).read_text().strip()
    return values


def write_sysctl(key: str, value: str) -> None:
    _sysctl_path(key).write_text(f"{value}\n")


def record(layout: Layout) -> dict:
    """Save what teardown restores; an existing record (from a run that was killed) is kept,
    since it holds the host as it was before that run."""
    if layout.record.exists():
        return json.loads(layout.record.read_text())
    state = {"sysctls": read_sysctls(), "nft": run("nft", "list", "ruleset")}
    layout.dir.mkdir(parents=True, exist_ok=True)
    layout.record.write_text(json.dumps(state, indent=1))
    return state


def restore(layout: Layout) -> list[str]:
    """Put back the sysctls and the ruleset of the record; returns what it changed back."""
    if not layout.record.exists():
        return []
    state = json.loads(layout.record.read_text())
    changed = []
    for key, value in state["sysctls"].items():
        current = read_sysctls([key]).get(key)
        if current is not None and current.split() != value.split():
            with contextlib.suppress(OSError):
                write_sysctl(key, value)
                changed.append(f"{key}={value}")
    if run("nft", "list", "ruleset") != state["nft"]:
        run("nft", "flush", "ruleset")
        if state["nft"].strip():
            run("nft", "-f", "-", input_text=state["nft"])
        changed.append("nftables ruleset")
    layout.record.unlink()
    return changed


# Links

def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def address_in_use(address: str) -> str | None:
    """The link that holds `address`, if any."""
    for line in run("ip", "-o", "-4", "addr", "show").splitlines():
        fields = line.split()
        if f"{address}/" in line:
            return fields[1]
    return None


def create_node_bridge(local_ranges: list[str]) -> None:
    """The node's address on a bridge without ports, and the cluster's ranges routed onto it:
    a packet to a ClusterIP that kube-proxy has not programmed yet (or to a Pod address not in
    use) dies on this bridge instead of leaving the machine by its default route."""
    run("ip", "link", "add", NODE_BRIDGE, "type", "bridge")
    run("ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_BRIDGE)
    run("ip", "link", "set", NODE_BRIDGE, "up")
    for cidr in local_ranges:
        run("ip", "route", "add", cidr, "dev", NODE_BRIDGE)


def keep_pods_inside(pod_range: str, local_ranges: list[str]) -> None:
    """Pods reach each other, Services and the node, and nothing else: a forwarded packet from
    the Pod range to any other address is dropped (these machines reach no network but their
    package registries, and a test's traffic stays on addresses this run made)."""
    allowed = ", ".join(local_ranges)
    run("nft", "-f", "-", input_text=f"""table inet resilience-lab-egress {{
  chain forward {{
    type filter hook forward priority -10; policy accept;
    ip saddr {pod_range} ip daddr != {{ {allowed} }} counter drop
  }}
}}
""")


def delete_links() -> list[str]:
    """The veths left on the Pod bridge, then both bridges."""
    removed = []
    if link_exists(POD_BRIDGE):
        for veth in os.listdir(f"/sys/class/net/{POD_BRIDGE}/brif"):
            run("ip", "link", "delete", veth, check=False)
            removed.append(veth)
    for bridge in (POD_BRIDGE, NODE_BRIDGE):
        if link_exists(bridge):
            run("ip", "link", "delete", bridge)
            removed.append(bridge)
    return removed


# Processes, mounts, cgroups, files

def processes_under(path: Path) -> list[int]:
    """Processes whose command line names `path` (containerd, its shims, the kubelet...)."""
    marker = str(path).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def cgroup_dirs(name: str) -> list[Path]:
    """The node's cgroup root in every v1 hierarchy (the kubelet's cgroupRoot)."""
    return [hierarchy / name for hierarchy in sorted(CGROUP_ROOT.iterdir())
            if (hierarchy / "cgroup.procs").exists() and hierarchy.name != "unified"]


def create_cgroups(name: str) -> None:
    for folder in cgroup_dirs(name):
        folder.mkdir(exist_ok=True)


def cgroup_pids(name: str) -> set[int]:
    pids = set()
    for folder in cgroup_dirs(name):
        if folder.exists():
            for procs in folder.rglob("cgroup.procs"):
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(line) for line in procs.read_text().split())
    return pids


def kill(pids, deadline: float = 10.0) -> None:
    """SIGKILL and wait until they are gone (bounded)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + deadline
    while time.monotonic() < end and any(Path(f"/proc/{pid}").exists() for pid in pids):
        time.sleep(0.1)


def remove_cgroups(name: str) -> None:
    """Leaf first: a cgroup with children or processes cannot be removed."""
    for folder in cgroup_dirs(name):
        if not folder.exists():
            continue
        for child in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                child.rmdir()
        with contextlib.suppress(OSError):
            folder.rmdir()


def mounts_under(path: Path) -> list[str]:
    prefix = str(path)
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            mounts.append(point)
    return mounts


def unmount_under(path: Path) -> list[str]:
    """Deepest first; a busy mount is detached lazily."""
    removed = []
    for _ in range(5):
        points = sorted(set(mounts_under(path)), key=len, reverse=True)
        if not points:
            break
        for point in points:
            if subprocess.run(["umount", point], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
            removed.append(point)
    return removed


def remove_cni_cache() -> None:
    """libcni's cached results of our network (the IPAM state lives under the cluster's folder)."""
    cache = Path("/var/lib/cni/results")
    if cache.is_dir():
        for entry in cache.glob(f"{CNI_NETWORK}-*"):
            entry.unlink(missing_ok=True)


def sweep(layout: Layout, cgroup_name: str) -> list[str]:
    """Undo everything a run of this cluster may have left: processes, container processes,
    mounts (netns, rootfs, volumes), cgroups, then, when this cluster had recorded the host (so
    the links and rules are its own), links, the CNI cache, the ruleset and the sysctls.
    Returns what it found, so a caller can say what a killed run had left."""
    found = []
    pids = processes_under(layout.dir)
    if pids:
        found.append(f"{len(pids)} node processes")
    kill(pids)
    pods = cgroup_pids(cgroup_name)
    if pods:
        found.append(f"{len(pods)} container processes")
    kill(pods)
    found += [f"mount {m}" for m in unmount_under(layout.dir)]
    remove_cgroups(cgroup_name)
    if layout.record.exists():
        found += [f"link {link}" for link in delete_links()]
        remove_cni_cache()
        found += restore(layout)
    return found
