"""What the demo runner asks of Istio on a cluster: whether a Pod carries istiod's sidecar (as a
container, or as a native sidecar: an init container that keeps running), and whether istiod runs."""

import os

import pytest

from lab.workloads import istio


def pod(containers=(), init=()) -> dict:
    return {"spec": {"containers": [{"name": n} for n in containers],
                     "initContainers": [{"name": n, **({"restartPolicy": r} if r else {})} for n, r in init]}}


def test_a_native_sidecar_counts_as_the_pods_istio_proxy():
    injected = pod(["webgatos"], [("istio-validation", None), ("istio-proxy", "Always")])
    assert istio.sidecar_names(injected) == ["webgatos", "istio-proxy"]
    assert istio.has_istio_proxy(injected)


def test_istio_proxy_as_a_plain_container_counts_too():
    assert istio.has_istio_proxy(pod(["webgatos", "istio-proxy"], [("istio-init", None)]))


def test_an_init_container_that_ends_is_no_sidecar():
    assert not istio.has_istio_proxy(pod(["webgatos"], [("istio-proxy", None)]))
    assert not istio.has_istio_proxy({"spec": {"containers": [{"name": "webgatos"}]}})


def test_the_pinned_kubectl_and_helm_come_first_on_path(monkeypatch):
    monkeypatch.setattr(istio.binaries, "control_plane", lambda name: f"/cache/controlplane/kube/{name}")
    monkeypatch.setattr(istio.binaries, "helm", lambda: "/cache/bin/helm")
    assert istio.tool_path({"PATH": "/usr/bin"}).split(os.pathsep) == [
        "/cache/controlplane/kube", "/cache/bin", "/usr/bin"]


@pytest.mark.processes
def test_without_a_reachable_cluster_istio_is_not_installed(tmp_path):
    config = tmp_path / "kubeconfig"
    config.write_text("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
                      "users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\n"
                      "current-context: x\n")
    assert istio.installed({**os.environ, "KUBECONFIG": str(config)}, timeout=20) is False
