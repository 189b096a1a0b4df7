"""The node's CNI plugin folder is the cluster's own (Istio CNI's agent writes its plugin there, not
into the host's), and the istio-cni values the host cluster hands to `make istio-install` name it."""

import tomllib

from lab.kube.hostcluster.layout import Layout
from lab.kube.hostcluster.runtime import containerd_config, istio_cni_values, link_cni_plugins


def debian_plugins(tmp_path, monkeypatch):
    system = tmp_path / "usr-lib-cni"
    system.mkdir()
    for name in ("bridge", "host-local", "portmap"):
        (system / name).write_text("#!/bin/sh\n")
    monkeypatch.setattr("lab.kube.hostcluster.runtime.cni_bin_dir", lambda: system)
    return system


def test_containerd_runs_plugins_from_the_clusters_folder(tmp_path, monkeypatch):
    debian_plugins(tmp_path, monkeypatch)
    layout = Layout("unit", tmp_path)
    cni = tomllib.loads(containerd_config(layout))["plugins"]["io.containerd.grpc.v1.cri"]["cni"]
    assert cni["bin_dir"] == str(layout.cni / "bin")


def test_the_clusters_plugin_folder_links_the_systems_plugins(tmp_path, monkeypatch):
    system = debian_plugins(tmp_path, monkeypatch)
    layout = Layout("unit", tmp_path / "state")
    folder = link_cni_plugins(layout)
    assert sorted(p.name for p in folder.iterdir()) == ["bridge", "host-local", "portmap"]
    assert (folder / "bridge").resolve() == system / "bridge"
    (folder / "istio-cni").write_text("the agent's copy")
    assert link_cni_plugins(layout) == folder and (folder / "istio-cni").read_text() == "the agent's copy"


def test_istio_cni_values_keep_the_agent_inside_the_clusters_folder(tmp_path):
    layout = Layout("unit", tmp_path)
    cni = istio_cni_values(layout)["cni"]
    assert cni == {"cniBinDir": str(layout.cni / "bin"), "cniConfDir": str(layout.cni / "net.d"),
                   "cniNetnsDir": str(layout.cni / "netns")}
