"""Every `make demo-*` runs against the real API server with DEMO_API_ONLY=1: each step that talks
to the API (preflight, namespace, helm upgrade --install, kubectl apply and label, istioctl
analyze, the chaos tool, the load-test Job, the HPA watch, the clean-up) runs for real, and stops
before waiting for Pods to run (there is no kubelet). Each demo ends with its namespace gone."""

import json
import os
import re
import subprocess
import uuid

import pytest
import yaml
from chartlib import REPO_ROOT

from lab.host import binaries

DEMOS = ("scale", "hpa", "nonscalable", "redis", "hazelcast", "loadtest", "chaos", "istio", "fault")
ISTIO_DEMOS = {"istio", "fault"}


def demo_env(cluster, prefix: str) -> dict[str, str]:
    tools = [os.path.dirname(binaries.control_plane(p)) for p in ("kubectl", "istioctl")]
    return {**cluster.plane.env(), "PATH": os.pathsep.join([*tools, os.environ["PATH"]]), "KUBE_CONTEXT": "lab",
            "DEMO_API_ONLY": "1", "DEMO_NS_PREFIX": prefix, "CHAOS_INTERVAL": "1s"}


@pytest.fixture(scope="module")
def istio_installed(cluster):
    """Placeholders for what `make istio-install` creates on a real cluster, whose Pods never run
    here: the istiod Deployment (`namespace.sh --istio` checks it) and the ingress gateway's
    Deployment, whose Pods carry the label the chart's Gateway selects, with the Service of
    istio/install/gateway-values.yaml (`istioctl analyze` checks the Gateway against both)."""
    for namespace, name, labels in (("istio-system", "istiod", {"app": "istiod"}),
                                    ("istio-ingress", "istio-ingressgateway", {"istio": "ingressgateway"})):
        cluster.kubectl("create", "namespace", namespace, check=False)
        container = {"name": name, "image": "istio/proxyv2:placeholder",
                     "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": name, "namespace": namespace},
                      "spec": {"selector": {"matchLabels": labels}, "template": {
                          "metadata": {"labels": labels},
                          "spec": {"securityContext": {"runAsNonRoot": True, "runAsUser": 1337,
                                                       "seccompProfile": {"type": "RuntimeDefault"}},
                                   "containers": [container]}}}}
        cluster.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(deployment))
    ports = yaml.safe_load((REPO_ROOT / "istio" / "install" / "gateway-values.yaml").read_text())["service"]["ports"]
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "istio-ingressgateway", "namespace": "istio-ingress"},
               "spec": {"selector": {"istio": "ingressgateway"}, "ports": [
                   {key: port[key] for key in ("name", "port", "protocol", "targetPort")} for port in ports]}}
    cluster.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(service))
    cluster.wait_for(lambda: cluster.items("pods", "istio-ingress", "istio=ingressgateway"), 30,
                     "the gateway placeholder's Pod")


def test_make_help_lists_exactly_these_demos():
    listed = subprocess.run(["make", "help"], capture_output=True, text=True, cwd=REPO_ROOT, check=True).stdout
    cluster_section = re.sub(r"\x1b\[[0-9;]*m", "", listed).split("Cluster demos", 1)[1].split("\n\n", 1)[0]
    demos = set(re.findall(r"\bdemo-([a-z]+)\b(?!-clean)", cluster_section))
    assert demos == set(DEMOS)


@pytest.mark.parametrize("demo", DEMOS)
def test_demo_runs_against_the_api_server(cluster, istio_installed, demo):
    prefix = f"d{uuid.uuid4().hex[:4]}-"
    namespace = f"{prefix}{demo}"
    result = subprocess.run(["make", "-s", f"demo-{demo}"], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=demo_env(cluster, prefix), timeout=600, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert cluster.warnings(result) == [], output
    assert f"namespace {namespace}: removed" in output
    assert cluster.kubectl("get", "namespace", namespace, check=False).returncode != 0
    if demo in ISTIO_DEMOS:
        # istioctl analyze ran against the server; with no injection webhook here, it may only
        # warn that the Pods lack their sidecar (IST0103), never report an error.
        assert "istioctl analyze" in subprocess.run(["make", "-n", f"demo-{demo}"], capture_output=True,
                                                    text=True, cwd=REPO_ROOT).stdout
        analyzer = re.findall(r"^(Error|Warning|Info) \[(IST\d+)\]", output, re.MULTILINE)
        assert {code for level, code in analyzer if level != "Info"} <= {"IST0103"}, output
    if "loadtest.sh" in subprocess.run(["make", "-n", f"demo-{demo}"], capture_output=True, text=True,
                                       cwd=REPO_ROOT).stdout:
        assert "DEMO_API_ONLY: job loadtest-" in output
