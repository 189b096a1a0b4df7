"""The node's container runtime: Debian's containerd and runc with the CNI bridge plugins, all
state under the cluster's folder, and the images imported from `make images`' archives."""

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

from lab.host.paths import CACHE
from lab.host.procs import ProcessGroup, wait_until
from lab.kube.hostcluster.host import HostError
from lab.kube.hostcluster.layout import (
    CLUSTER_CIDR,
    CNI_NETWORK,
    PAUSE_IMAGE,
    POD_BRIDGE,
    POD_CIDR,
    POD_GATEWAY,
    Layout,
)

CNI_BIN_DIRS = [Path("/usr/lib/cni"), Path("/opt/cni/bin")]
K8S_NAMESPACE = "k8s.io"  # containerd's namespace for the CRI's images and containers
IMAGE_ARCHIVES = CACHE / "images" / "archives"


def image_archives(folder: Path = IMAGE_ARCHIVES) -> list[Path]:
    """The archives `make images` exported (index.txt lists them; else every .tar there)."""
    index = folder / "index.txt"
    if not index.is_file():
        return sorted(folder.glob("*.tar"))
    # IMAGE<TAB>ARCHIVE lines; an archive's path is absolute or relative to the folder.
    return [folder / line.split("\t", 1)[1] for line in index.read_text().splitlines() if "\t" in line]


def cni_bin_dir() -> Path:
    for folder in CNI_BIN_DIRS:
        if (folder / "bridge").is_file():
            return folder
    raise HostError("CNI plugins not found in /usr/lib/cni or /opt/cni/bin: "
                    "apt-get install containernetworking-plugins")


def istio_cni_values(layout: Layout) -> dict:
    """The istio-cni chart's values for this node (scripts/cluster/istio.sh reads them from
    ISTIO_CNI_VALUES_FILE): the agent copies its plugin into the cluster's own plugin folder and
    chains it into the cluster's network configuration, so nothing of the host's is touched."""
    return {"cni": {"cniBinDir": str(layout.cni / "bin"), "cniConfDir": str(layout.cni / "net.d"),
                    "cniNetnsDir": str(layout.cni / "netns")}}


ISTIO_CNI_VALUES_FILE = "istio-cni-values.yaml"  # under the cluster's cni folder


def link_cni_plugins(layout: Layout) -> Path:
    """The cluster's CNI plugin folder: links to Debian's plugins, and room for Istio CNI's own."""
    folder = layout.cni / "bin"
    folder.mkdir(parents=True, exist_ok=True)
    for plugin in cni_bin_dir().iterdir():
        link = folder / plugin.name
        if not link.is_symlink() and not link.exists():
            link.symlink_to(plugin)
    return folder


def containerd_config(layout: Layout) -> str:
    state = layout.containerd / "state"
    # restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and runc fails ("can't get final
    # child's PID from pipe") when asked to lower a score. netns_mounts_under_state_dir keeps
    # every Pod's network namespace mount where teardown looks for it.
    return f"""version = 2
root = "{layout.containerd / 'root'}"
state = "{state}"
[grpc]
  address = "{layout.containerd_socket}"
[ttrpc]
  address = "{layout.containerd / 'containerd.sock.ttrpc'}"
[debug]
  level = "warn"
[plugins."io.containerd.internal.v1.opt"]
  path = "{layout.containerd / 'opt'}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{state / 'runc'}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{layout.cni / 'bin'}"
    conf_dir = "{layout.cni / 'net.d'}"
"""


def cni_config(layout: Layout) -> dict:
    """bridge (the Pods' gateway, masquerade out of the Pod range, hairpin for a Pod reaching
    itself through a Service) + host-local IPAM + portmap."""
    return {"cniVersion": "1.0.0", "name": CNI_NETWORK, "plugins": [
        {"type": "bridge", "bridge": POD_BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": str(layout.cni / "ipam"),
                  "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True,
         "externalSetMarkChain": "KUBE-MARK-MASQ", "masqAll": False},
    ], "_clusterCIDR": CLUSTER_CIDR}


class Containerd:
    def __init__(self, layout: Layout, group: ProcessGroup):
        self.layout, self.group = layout, group

    def start(self, timeout: float = 30.0) -> "Containerd":
        folder = self.layout.containerd
        folder.mkdir(parents=True, exist_ok=True)
        (self.layout.cni / "net.d").mkdir(parents=True, exist_ok=True)
        config = cni_config(self.layout)
        config.pop("_clusterCIDR")
        (self.layout.cni / "net.d" / "10-resilience-lab.conflist").write_text(json.dumps(config, indent=1))
        link_cni_plugins(self.layout)
        (self.layout.cni / ISTIO_CNI_VALUES_FILE).write_text(json.dumps(istio_cni_values(self.layout), indent=1))
        (folder / "config.toml").write_text(containerd_config(self.layout))
        binary = shutil.which("containerd")
        if not binary:
            raise HostError("containerd not found: apt-get install containerd runc (make cluster-up installs them)")
        self.proc = self.group.start("containerd", [binary, "--config", str(folder / "config.toml")])
        wait_until(lambda: self.ctr("version", check=False).returncode == 0, timeout, "containerd", interval=0.2,
                   proc=self.proc)
        return self

    def ctr(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        result = subprocess.run(["ctr", "--address", str(self.layout.containerd_socket), "-n", K8S_NAMESPACE, *args],
                                capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise HostError(f"ctr {' '.join(args)} exited {result.returncode}: {result.stderr.strip()}")
        return result

    def images(self) -> set[str]:
        return {line.split()[0] for line in self.ctr("images", "ls", "-q").stdout.splitlines() if line.strip()}

    def import_archives(self, archives: list[Path]) -> list[str]:
        """Import docker-archive tarballs (`make images`) as one merged archive; names come out
        fully qualified."""
        before = self.images()
        if archives:
            self.ctr("images", "import", str(merged_archive(archives)))
        return sorted(image for image in self.images() - before if not image.startswith("sha256:"))


def merged_archive(archives: list[Path]) -> Path:
    """One docker-archive holding every image of `archives`: their layers are files named by
    digest, so the base layers that every image shares are stored, hashed and unpacked once
    (2.5 GB of archives make about a third of that). Cached beside them, keyed by their contents'
    stamps."""
    key = hashlib.sha256()
    for archive in archives:
        stamp = archive.with_name(archive.name + ".id")
        key.update(f"{archive}\0{stamp.read_text() if stamp.exists() else archive.stat().st_mtime_ns}\0".encode())
    merged = archives[0].parent / f"node-images-{key.hexdigest()[:16]}.tar.merged"
    if merged.exists():
        return merged
    for stale in archives[0].parent.glob("node-images-*.tar.merged"):
        stale.unlink()
    manifest, seen = [], set()
    partial = merged.with_suffix(".tmp")
    with tarfile.open(partial, "w") as out:
        for archive in archives:
            with tarfile.open(archive) as source:
                for member in source:
                    if member.name == "manifest.json":
                        manifest += json.load(source.extractfile(member))
                    elif member.name not in seen and member.name != "repositories":
                        seen.add(member.name)
                        out.addfile(member, source.extractfile(member) if member.isfile() else None)
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
    partial.rename(merged)
    return merged
