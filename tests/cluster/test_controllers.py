"""What the real controllers make of the charts: ReplicaSets and Pods as rendered, StatefulSets
with their Pods and governing Services, the HPA's verdict without a metrics API, and the PDB's
disruption budget (computed from Pods the lab's node runs, then enforced on evictions)."""

import json

import pytest
import yaml
from chartlib import CHARTS_DIR, REPO_ROOT

LAB_VALUES = str(REPO_ROOT / "lab" / "values" / "webgatos.yaml")


def is_subset(expected, actual) -> bool:
    """Every field of `expected` is in `actual` with the same value (the server adds defaults)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(is_subset(v, actual.get(k)) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(is_subset(e, a) for e, a in zip(expected, actual, strict=True)))
    return expected == actual


def rendered(cluster, namespace: str, kind: str, name: str) -> dict:
    manifest = cluster.helm("get", "manifest", "lab", "--namespace", namespace).stdout
    return next(doc for doc in yaml.safe_load_all(manifest) if doc and doc["kind"] == kind
                and doc["metadata"]["name"] == name)


def test_deployment_gets_a_replicaset_with_pods_as_rendered(cluster, namespace):
    cluster.install("lab", namespace, CHARTS_DIR / "webgatos", "-f",
                    str(CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml"))
    template = rendered(cluster, namespace, "Deployment", "lab-webgatos")["spec"]["template"]
    selector = "app.kubernetes.io/instance=lab,app.kubernetes.io/component=web"
    replicasets = cluster.wait_for(lambda: cluster.items("replicasets", namespace, selector), 30, "a ReplicaSet")
    assert len(replicasets) == 1 and replicasets[0]["spec"]["replicas"] == 3
    assert replicasets[0]["metadata"]["ownerReferences"][0]["name"] == "lab-webgatos"
    pods = cluster.wait_for(lambda: len(p := cluster.items("pods", namespace, selector)) == 3 and p, 30, "3 Pods")
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["name"] == replicasets[0]["metadata"]["name"]
        assert is_subset(template["spec"]["securityContext"], pod["spec"]["securityContext"])
        want, got = template["spec"]["containers"][0], pod["spec"]["containers"][0]
        for field in ("image", "ports", "startupProbe", "livenessProbe", "readinessProbe", "resources",
                      "securityContext", "lifecycle", "volumeMounts"):
            assert is_subset(want[field], got[field]), (field, want[field], got[field])
        assert pod["status"]["phase"] == "Pending"  # no kubelet has taken it: the one "cluster only" part
        assert pod["spec"]["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("values", "statefulset", "replicas"), [
    ("redis-values.yaml", "lab-webgatos-redis", 1),
    ("hazelcast-values.yaml", "lab-webgatos-hazelcast", 3),
])
def test_store_statefulsets_get_their_pods_and_governing_services(cluster, namespace, values, statefulset, replicas):
    cluster.install("lab", namespace, CHARTS_DIR / "webgatos", "-f", str(CHARTS_DIR / "webgatos" / "ci" / values))
    pods = cluster.wait_for(
        lambda: len(p := [pod for pod in cluster.items("pods", namespace)
                          if pod["metadata"]["name"].startswith(f"{statefulset}-")]) == replicas and p,
        30, f"{replicas} Pods of {statefulset}")
    assert sorted(p["metadata"]["name"] for p in pods) == [f"{statefulset}-{i}" for i in range(replicas)]
    live = cluster.get("statefulset", statefulset, "--namespace", namespace)
    governing = cluster.get("service", live["spec"]["serviceName"], "--namespace", namespace)
    assert governing["spec"]["selector"] == live["spec"]["selector"]["matchLabels"]
    if replicas > 1:  # members find each other through the per-Pod DNS names a headless Service gives
        assert governing["spec"]["clusterIP"] == "None"
        assert governing["spec"].get("publishNotReadyAddresses") is True
    for pod in pods:
        assert pod["spec"]["subdomain"] == live["spec"]["serviceName"]
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == pod["metadata"]["name"]


@pytest.mark.parametrize(("chart", "values"), [("sqrt", []), ("webgatos", ["-f", "ci/hpa-values.yaml"])])
def test_hpa_names_the_missing_metrics_api_not_a_bad_target(cluster, namespace, chart, values):
    args = [str(CHARTS_DIR / chart / v) if v.startswith("ci/") else v for v in values]
    cluster.install("lab", namespace, CHARTS_DIR / chart, *args)
    name = f"lab-{chart}"

    def verdict():
        status = cluster.get("hpa", name, "--namespace", namespace).get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        return conditions if "ScalingActive" in conditions else None

    conditions = cluster.wait_for(verdict, 60, f"the HPA controller's verdict on {name}")
    assert conditions["AbleToScale"]["status"] == "True", conditions  # the target Deployment is fine
    active = conditions["ScalingActive"]
    assert active["status"] == "False" and active["reason"] == "FailedGetResourceMetric", active
    assert "metrics.k8s.io" in active["message"] and "cpu" in active["message"], active["message"]


def test_pdb_budget_follows_ready_pods_and_blocks_the_second_eviction(cluster, namespace, lab_node):
    cluster.install("lab", namespace, CHARTS_DIR / "webgatos", "-f", LAB_VALUES)

    def pdb_status():
        return cluster.get("pdb", "lab-webgatos", "--namespace", namespace).get("status", {})

    healthy = cluster.wait_for(lambda: (s := pdb_status()).get("currentHealthy") == 2 and s, 60,
                               "both replicas ready on the lab node")
    assert healthy["expectedPods"] == 2 and healthy["desiredHealthy"] == 1 and healthy["disruptionsAllowed"] == 1

    pods = cluster.items("pods", namespace, "app.kubernetes.io/component=web")
    first, second = (pod["metadata"]["name"] for pod in pods[:2])
    cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{first}/eviction", "-f", "-",
                    input_text=json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                                           "metadata": {"name": first, "namespace": namespace}}))
    refused = cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{second}/eviction", "-f", "-",
                              input_text=json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                                                     "metadata": {"name": second, "namespace": namespace}}),
                              check=False)
    assert refused.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget" in refused.stderr, refused.stderr
    # The evicted replica drains on the lab node, the ReplicaSet replaces it, and the budget is back.
    cluster.wait_for(lambda: (s := pdb_status()).get("currentHealthy") == 2 and s.get("disruptionsAllowed") == 1
                     and first not in {p["metadata"]["name"] for p in cluster.items("pods", namespace)}, 90,
                     "the replacement to be ready and the budget back at 1")
