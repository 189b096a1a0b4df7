"""Both charts, with their defaults and every ci/ values file, installed on real Pods with
`helm install --wait` (every probe of the kubelet passes) and checked by `helm test`, in
namespaces that enforce PodSecurity `restricted`. Each container runs as non-root with a
read-only root filesystem, and the node's container runtime ran it as such."""

import json

import chartlib
import pytest
from chartlib import CHARTS_DIR, Scenario

# Values files that name things outside the release: the test provides them (see prepare()).
EXTERNAL_REDIS = "ci/redis-external-values"
CHART_SCENARIOS = [s for s in chartlib.scenarios() if not s.name.startswith("istio/")]


def external_redis(namespace: str) -> list[dict]:
    """A Redis outside the release, as the values file expects one (port 6380, password from the
    Secret `shared-redis`); without TLS, since the app's image trusts only the system's CAs."""
    labels = {"app": "external-redis"}
    security = {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999, "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"name": "redis", "image": "redis:7.4-alpine", "imagePullPolicy": "IfNotPresent",
                 "args": ["--port", "6380", "--requirepass", "$(REDIS_PASSWORD)", "--dir", "/data", "--save", ""],
                 "env": [{"name": "REDIS_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "shared-redis",
                                                                                   "key": "redis-password"}}}],
                 "ports": [{"containerPort": 6380}], "securityContext": security,
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "external-redis", "namespace": namespace},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
             "metadata": {"labels": labels},
             "spec": {"containers": [container], "volumes": [{"name": "data", "emptyDir": {}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external-redis", "namespace": namespace},
         "spec": {"selector": labels, "ports": [{"port": 6380, "targetPort": 6380}]}},
    ]


def prepare(host_tier, namespace: str, scenario: Scenario) -> list[str]:
    """Extra arguments a scenario needs here; an external Redis becomes a real one in the namespace."""
    if scenario.name != EXTERNAL_REDIS:
        return []
    host_tier.kubectl("create", "secret", "generic", "shared-redis", "--namespace", namespace,
                      "--from-literal=redis-password=external-secret")
    host_tier.kubectl("create", "secret", "generic", "webgatos-shared-key", "--namespace", namespace,
                      "--from-literal=secret-key=a-key-shared-by-every-replica")
    for manifest in external_redis(namespace):
        host_tier.kubectl("apply", "--server-side", "-f", "-", input_text=json.dumps(manifest))
    host_tier.kubectl("rollout", "status", "deployment/external-redis", "--namespace", namespace, "--timeout=90s")
    return ["--set", f"sessionStore.redis.external.host=external-redis.{namespace}.svc.cluster.local",
            "--set", "sessionStore.redis.external.tls=false"]


@pytest.mark.parametrize("scenario", CHART_SCENARIOS, ids=lambda s: s.id)
def test_installs_on_real_pods_and_passes_helm_test(host_tier, host_namespace, scenario):
    extra = prepare(host_tier, host_namespace, scenario)
    host_tier.install("lab", host_namespace, scenario.chart_dir, *scenario.helm_args()[1:], *extra)
    # An HPA may add Pods after the install (its minimum above replicaCount): they must come up too.
    def all_up():
        pods = [p for p in host_tier.pods(host_namespace) if not p["metadata"].get("deletionTimestamp")]
        return pods and all(p["status"].get("phase") == "Succeeded" or any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
            for p in pods) and pods
    pods = host_tier.wait_for(all_up, 90, "every Pod Ready", host_namespace)
    for pod in pods:
        spec = pod["spec"]
        for container in spec["containers"]:
            security = container.get("securityContext", {})
            assert security.get("readOnlyRootFilesystem") is True, (pod["metadata"]["name"], container["name"])
            assert security.get("allowPrivilegeEscalation") is False
            assert security.get("capabilities", {}).get("drop") == ["ALL"]
            assert (security.get("runAsNonRoot") or spec.get("securityContext", {}).get("runAsNonRoot")) is True
    tested = host_tier.helm("test", "lab", "--namespace", host_namespace, "--logs")
    assert "Phase:          Succeeded" in tested.stdout or "Succeeded" in tested.stdout, tested.stdout


def test_the_containers_really_run_as_non_root_on_a_read_only_root(host_tier, host_namespace):
    """Not only the spec: the running process's uid and the root filesystem, seen in the container."""
    host_tier.install("lab", host_namespace, CHARTS_DIR / "webgatos", "--set", "replicaCount=1")
    pod = host_tier.ready_pods(host_namespace, "app.kubernetes.io/component=web")[0]["metadata"]["name"]
    probe = ("import os\n"
             "print('uid', os.getuid())\n"
             "try:\n open('/probe', 'w')\nexcept OSError as e:\n print('write', e.errno)\n")
    result = host_tier.kubectl("exec", pod, "--namespace", host_namespace, "--", "python", "-c", probe)
    assert "uid 10001" in result.stdout
    assert "write 30" in result.stdout  # EROFS: the root filesystem is read-only
