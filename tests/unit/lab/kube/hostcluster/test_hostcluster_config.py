"""The host cluster's generated configuration and its command line, without starting anything
(the real-node tier, tests/cluster/host/, runs them)."""

import subprocess
import sys
import tomllib

import pytest

from lab.kube.hostcluster import preflight
from lab.kube.hostcluster.layout import NODE_IP, PAUSE_IMAGE, POD_BRIDGE, POD_CIDR, Layout
from lab.kube.hostcluster.runtime import cni_config, containerd_config, image_archives
from tests.conftest import REPO_ROOT


def test_containerd_keeps_all_state_under_the_clusters_folder(tmp_path, monkeypatch):
    monkeypatch.setattr("lab.kube.hostcluster.runtime.cni_bin_dir", lambda: tmp_path / "cni-bin")
    layout = Layout("unit", tmp_path)
    config = tomllib.loads(containerd_config(layout))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert config["root"].startswith(str(layout.dir)) and config["state"].startswith(str(layout.dir))
    assert config["grpc"]["address"] == str(layout.containerd_socket)
    assert cri["sandbox_image"] == PAUSE_IMAGE
    # root here lacks CAP_SYS_RESOURCE: without this runc fails to start any container
    assert cri["restrict_oom_score_adj"] is True and cri["netns_mounts_under_state_dir"] is True
    runc = cri["containerd"]["runtimes"]["runc"]["options"]
    assert runc["SystemdCgroup"] is False and runc["Root"].startswith(str(layout.dir))
    assert cri["cni"]["conf_dir"].startswith(str(layout.dir))


def test_cni_is_a_masquerading_hairpin_bridge_on_the_pod_range(tmp_path):
    bridge, portmap = cni_config(Layout("unit", tmp_path))["plugins"]
    assert bridge["bridge"] == POD_BRIDGE and bridge["isGateway"] and bridge["ipMasq"] and bridge["hairpinMode"]
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == POD_CIDR
    assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))
    assert portmap["type"] == "portmap"


def test_the_node_address_is_not_loopback():
    assert not NODE_IP.startswith("127.")  # the kubelet refuses a loopback node IP


def test_image_archives_come_from_the_index(tmp_path):
    (tmp_path / "a.tar").write_bytes(b"")
    (tmp_path / "index.txt").write_text("docker.io/library/redis:7.4-alpine\ta.tar\n")
    assert image_archives(tmp_path) == [tmp_path / "a.tar"]


def test_without_root_preflight_names_the_cause(monkeypatch):
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    try:
        preflight.check_root()
    except preflight.PreflightError as error:
        assert "needs root" in str(error) and "\n" not in str(error)
    else:
        raise AssertionError("no error without root")


@pytest.mark.processes
def test_a_bad_verb_exits_2_with_one_line():
    result = subprocess.run([sys.executable, "-m", "lab", "host-cluster", "sideways"], capture_output=True,
                            text=True, cwd=REPO_ROOT, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.processes
def test_status_of_a_cluster_that_is_not_running(tmp_path):
    result = subprocess.run([sys.executable, "-m", "lab", "host-cluster", "status", "--name", "absent",
                             "--state-root", str(tmp_path)], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=60)
    assert result.returncode == 1 and "not running" in result.stdout
