"""Istio on real Pods: `make istio-install` on the host cluster (the pinned Istio's charts, our images,
Istio CNI), sidecars injected by istiod's own webhook (the API server calls it through the istiod
Service), a request through the ingress gateway, mutual TLS enforced between sidecars, and the
PodSecurity decision (Istio CNI keeps injected Pods `restricted`) proven by the server's admission.
The figures (install, Pod Ready with a sidecar) go to the test's report (record_property)."""

import http.client
import json
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from chartlib import CHARTS_DIR

from lab.host import binaries
from lab.kube.hostcluster.layout import NODE_IP
from lab.kube.mesh.gateway import GATEWAY_NAMESPACE
from lab.kube.mesh.istiod import ISTIO_NAMESPACE
from lab.workloads.istio import has_istio_proxy
from tests.cluster.host.conftest import SELECTOR_WEB

GATEWAY_SERVICE = "istio-ingressgateway"
GATEWAY_NODE_PORT = 30080  # istio/install/gateway-values.yaml
RELEASE, SERVICE = "mesh", "mesh-webgatos"
REPLICAS = 2
# A Pod as a user writes it: restricted-ready, no sidecar of its own.
BARE_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "admission-probe"}, "spec": {
    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [{"name": "app", "image": "docker.io/library/python:3.11-slim-bookworm",
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]}}


@pytest.fixture(scope="module")
def mesh(host_tier, istio, record_testsuite_property):
    """webgatos (2 replicas, Redis) in a namespace enforcing `restricted` and labelled for
    injection, with the chart's Istio resources and mTLS STRICT; its Pods' time to Ready."""
    namespace = f"mesh-{uuid.uuid4().hex[:5]}"
    host_tier.plane.create_namespace(namespace, labels={"istio-injection": "enabled"})
    start = time.monotonic()
    host_tier.install(RELEASE, namespace, CHARTS_DIR / "webgatos", "--set", f"replicaCount={REPLICAS}",
                      "--set", "sessionStore.type=redis", "--set", "istio.enabled=true",
                      "--set", "istio.peerAuthentication.enabled=true")
    ready_seconds = round(time.monotonic() - start, 1)
    record_testsuite_property("istio_install_seconds", istio.install_seconds)
    record_testsuite_property("webgatos_with_sidecars_ready_seconds", ready_seconds)
    print(f"\nIstio install: {istio.install_seconds} s; webgatos + Redis with sidecars Ready: {ready_seconds} s")
    yield namespace
    host_tier.kubectl("delete", "pods", "--all", "--namespace", namespace, "--force", "--grace-period=0", check=False)
    host_tier.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def gateway_url(host_tier) -> str:
    ip = host_tier.get("service", GATEWAY_SERVICE, "--namespace", GATEWAY_NAMESPACE)["spec"]["clusterIP"]
    return f"http://{ip}"


def get(url: str, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


def dry_run(host_tier, pod: dict, namespace: str) -> subprocess.CompletedProcess:
    """The API server's own verdict on `pod` (webhooks and admission run; nothing is stored)."""
    return host_tier.kubectl("create", "--dry-run=server", "--namespace", namespace, "-o", "json", "-f", "-",
                             input_text=json.dumps(pod), check=False)


def test_istiods_webhook_injects_sidecars(host_tier, mesh):
    pods = host_tier.ready_pods(mesh)
    assert len(pods) == REPLICAS + 1, host_tier.explain(mesh)  # the replicas and Redis
    for pod in pods:
        name, spec = pod["metadata"]["name"], pod["spec"]
        assert has_istio_proxy(pod), f"{name}: no istio-proxy in {spec}"
        assert "sidecar.istio.io/status" in pod["metadata"]["annotations"], f"{name}: not injected by istiod"
        init_names = [c["name"] for c in spec.get("initContainers", [])]
        # Istio CNI programs the redirect: the Pod only validates it, without NET_ADMIN.
        assert "istio-validation" in init_names and "istio-init" not in init_names, init_names
        statuses = {s["name"]: s for s in pod["status"].get("initContainerStatuses", [])}
        assert statuses["istio-proxy"]["ready"], f"{name}: istio-proxy not ready: {statuses['istio-proxy']}"
        proxy = next(c for c in spec["initContainers"] if c["name"] == "istio-proxy")
        assert proxy["image"].endswith(":" + binaries.control_plane_versions()["ISTIO_VERSION"]), proxy["image"]


def test_a_request_through_the_ingress_gateway_reaches_a_replica(host_tier, mesh):
    web = {p["metadata"]["name"] for p in host_tier.ready_pods(mesh, SELECTOR_WEB)}
    # The gateway's Service from the host (kube-proxy), then its NodePort on the node's address.
    for url in (gateway_url(host_tier), f"http://{NODE_IP}:{GATEWAY_NODE_PORT}"):
        def answered(url=url) -> dict | None:
            status, headers = get(f"{url}/api/session")
            return headers if status == 200 else None
        headers = host_tier.wait_for(answered, 60, f"200 from {url}/api/session", mesh)
        assert headers.get("server") == "istio-envoy" and headers.get("x-replica") in web, headers


def test_mutual_tls_is_strict_between_sidecars(host_tier, mesh):
    pod = host_tier.ready_pods(mesh, SELECTOR_WEB)[0]
    # From outside the mesh (this host, no sidecar), the replica's port refuses plaintext...
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"http://{pod['status']['podIP']}:8080/healthz", timeout=5)
    # ...while the gateway's sidecar reaches it over mTLS: the replica's sidecar logs the request
    # with the SNI of Istio's mutual TLS (outbound_.PORT_._.HOST), which only a TLS client sends.
    # The gateway replaces an outside x-request-id (it is the edge); the User-Agent reaches the log.
    agent = f"mtls-check-{uuid.uuid4().hex}"
    wanted = f"outbound_.80_._.{SERVICE}.{mesh}.svc.cluster.local"

    def logged() -> str | None:
        get(f"{gateway_url(host_tier)}/api/session", {"User-Agent": agent})
        for web in host_tier.ready_pods(mesh, SELECTOR_WEB):
            log = host_tier.kubectl("logs", web["metadata"]["name"], "-c", "istio-proxy", "--namespace", mesh,
                                    check=False).stdout
            line = next((line for line in log.splitlines() if agent in line), None)
            if line:
                return line
        return None
    line = host_tier.wait_for(logged, 60, f"the request of {agent} in a replica's sidecar log", mesh, interval=2)
    assert wanted in line.split(), line


def test_pod_security_admits_injected_pods_and_refuses_istio_init(host_tier, mesh, host_namespace, tmp_path):
    # An injected Pod, as the webhook makes it, is admitted at `restricted`.
    admitted = dry_run(host_tier, BARE_POD, mesh)
    assert admitted.returncode == 0, admitted.stderr
    injected = json.loads(admitted.stdout)
    assert has_istio_proxy(injected), injected["spec"]
    labels = host_tier.get("namespace", mesh)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted" and labels["istio-injection"] == "enabled"
    # The same Pod as istiod injects it without Istio CNI (istio-init: NET_ADMIN, NET_RAW, root):
    # the injector's own template and values, with only pilot.cni.enabled turned off.
    config = host_tier.get("configmap", "istio-sidecar-injector", "--namespace", ISTIO_NAMESPACE)["data"]
    values = json.loads(config["values"])
    values["pilot"]["cni"]["enabled"] = False
    mesh_config = host_tier.get("configmap", "istio", "--namespace", ISTIO_NAMESPACE)["data"]["mesh"]
    files = {"inject.yaml": config["config"], "values.json": json.dumps(values), "mesh.yaml": mesh_config,
             "pod.json": json.dumps(BARE_POD)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    rendered = subprocess.run(
        [binaries.control_plane("istioctl"), "kube-inject", "--injectConfigFile", str(tmp_path / "inject.yaml"),
         "--valuesFile", str(tmp_path / "values.json"), "--meshConfigFile", str(tmp_path / "mesh.yaml"),
         "-f", str(tmp_path / "pod.json"), "-o", str(tmp_path / "istio-init.yaml")],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert rendered.returncode == 0, rendered.stderr
    istio_init_pod = (tmp_path / "istio-init.yaml").read_text()
    assert "name: istio-init" in istio_init_pod and "NET_ADMIN" in istio_init_pod
    # host_namespace has no injection label (the Pod is injected already); `baseline` refuses it too.
    for level in ("restricted", "baseline"):
        host_tier.kubectl("label", "namespace", host_namespace, "--overwrite",
                          f"pod-security.kubernetes.io/enforce={level}")
        refused = host_tier.kubectl("create", "--dry-run=server", "--namespace", host_namespace, "-f",
                                    str(tmp_path / "istio-init.yaml"), check=False)
        assert refused.returncode != 0, f"{level} admitted istio-init"
        assert f'violates PodSecurity "{level}' in refused.stderr and "NET_ADMIN" in refused.stderr, refused.stderr
