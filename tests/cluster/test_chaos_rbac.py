"""The chaos tool against the real API server with the ServiceAccount token of
chaos/deploy/rbac.yaml (not admin): it sees and deletes exactly the selected Pods, the ReplicaSet
controller replaces each one and the lab's node runs the replacement; the same token may touch
nothing else."""

import subprocess
import sys
import time

import pytest
from chartlib import CHARTS_DIR, REPO_ROOT
from kubernetes import client
from kubernetes.client.exceptions import ApiException

CHAOS_NAMESPACE = "rl-chaos"  # the namespace chaos/deploy/rbac.yaml grants
SELECTOR = "app.kubernetes.io/name=webgatos,app.kubernetes.io/component=web"
LAB_VALUES = str(REPO_ROOT / "lab" / "values" / "webgatos.yaml")


@pytest.fixture(scope="module")
def chaos_namespace(cluster, lab_node):
    cluster.plane.create_namespace(CHAOS_NAMESPACE)
    cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "chaos" / "deploy" / "rbac.yaml"))
    cluster.install("lab", CHAOS_NAMESPACE, CHARTS_DIR / "webgatos", "-f", LAB_VALUES, "--set", "replicaCount=3")
    yield CHAOS_NAMESPACE
    cluster.kubectl("delete", "namespace", CHAOS_NAMESPACE, "--wait=true", "--timeout=90s", check=False)


@pytest.fixture(scope="module")
def chaos_kubeconfig(cluster, chaos_namespace, tmp_path_factory):
    token = cluster.plane.service_account_token(chaos_namespace, "pod-chaos")
    return cluster.plane.token_kubeconfig(tmp_path_factory.mktemp("chaos") / "kubeconfig", token,
                                          "system:serviceaccount:rl-chaos:pod-chaos", chaos_namespace)


def running_pods(cluster) -> dict[str, str]:
    """name -> uid of the Running webgatos Pods."""
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in cluster.items("pods", CHAOS_NAMESPACE, SELECTOR)
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")}


def ready_count(cluster) -> int:
    return sum(1 for p in cluster.items("pods", CHAOS_NAMESPACE, SELECTOR)
               if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))


def pods_and_node_events(cluster, lab_node) -> str:
    """Each webgatos Pod's phase, readiness and restarts as the API has them, and the lab node's
    last events for this namespace's Pods (starts, probe verdicts, exits), seconds before now."""
    now = time.time()
    lines = ["Pods:"]
    for pod in cluster.items("pods", CHAOS_NAMESPACE, SELECTOR):
        status = pod["status"]
        ready = next((c["status"] for c in status.get("conditions", []) if c["type"] == "Ready"), "?")
        restarts = sum(c.get("restartCount", 0) for c in status.get("containerStatuses", []))
        deleting = " deleting" if pod["metadata"].get("deletionTimestamp") else ""
        lines.append(f"  {pod['metadata']['name']}: {status.get('phase')} Ready={ready} restarts={restarts}{deleting}")
    lines.append("Node events:")
    lines += [f"  {event['epoch'] - now:+8.2f}s {event['event']} {event.get('pod', '')} "
              f"{ {k: v for k, v in event.items() if k not in ('epoch', 'event', 'pod', 'namespace')} }"
              for event in lab_node.events()
              if event.get("namespace") in (CHAOS_NAMESPACE, None)][-60:]
    return "\n".join(lines)


def chaos(kubeconfig, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaos", "k8s", "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)


def test_dry_run_lists_exactly_the_selected_running_pods(cluster, chaos_namespace, chaos_kubeconfig):
    pods = cluster.wait_for(lambda: len(p := running_pods(cluster)) == 3 and p, 60, "3 Running webgatos Pods")
    result = chaos(chaos_kubeconfig, "--namespace", chaos_namespace, "--selector", SELECTOR, "--interval", "0.2s",
                   "--rounds", "1", "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = result.stdout.split("match now: ", 1)[1].splitlines()[0].split(", ")
    assert sorted(listed) == sorted(pods)
    assert running_pods(cluster) == pods  # nothing was deleted


def test_each_round_deletes_one_pod_and_the_replicaset_replaces_it(cluster, lab_node, chaos_namespace,
                                                                   chaos_kubeconfig):
    def explain():
        return pods_and_node_events(cluster, lab_node)

    cluster.wait_for(lambda: ready_count(cluster) == 3, 60, "3 ready replicas", explain=explain)
    before = running_pods(cluster)
    result = chaos(chaos_kubeconfig, "--namespace", chaos_namespace, "--selector", SELECTOR, "--interval", "1s",
                   "--rounds", "2", "--grace-period", "0", "--seed", "7")
    assert result.returncode == 0, result.stderr + result.stdout
    killed = [line.split("victim=", 1)[1].split()[0] for line in result.stdout.splitlines() if " killed " in line]
    assert len(killed) == 2 and len(set(killed)) == 2, result.stdout
    assert killed[0] in before  # the second victim may already be the first one's replacement
    # Each deleted Pod is gone, replaced by a new one the lab's node runs and reports ready.
    cluster.wait_for(lambda: ready_count(cluster) == 3 and not set(killed) & set(running_pods(cluster)), 60,
                     "the ReplicaSet's replacements to be ready", explain=explain)
    after = running_pods(cluster)
    assert len(after) == 3 and not set(killed) & set(after)
    events = cluster.items("events", chaos_namespace)
    created = [e for e in events
               if e.get("reason") == "SuccessfulCreate" and e["involvedObject"]["kind"] == "ReplicaSet"]
    assert len(created) >= 3 + 2


def test_the_token_is_refused_everywhere_else(cluster, chaos_namespace, chaos_kubeconfig):
    core = client.CoreV1Api(cluster.plane.api_client(chaos_kubeconfig))
    forbidden = [
        ("list pods in kube-system", lambda: core.list_namespaced_pod("kube-system")),
        ("list pods in default", lambda: core.list_namespaced_pod("default")),
        ("delete a pod in default", lambda: core.delete_namespaced_pod("any", "default")),
        ("delete the Service", lambda: core.delete_namespaced_service("lab-webgatos", chaos_namespace)),
        ("read a Secret", lambda: core.read_namespaced_secret("lab-webgatos", chaos_namespace)),
        ("create a pod", lambda: core.create_namespaced_pod(chaos_namespace, {"metadata": {"name": "x"}})),
        ("list namespaces", lambda: core.list_namespace()),
    ]
    for what, call in forbidden:
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403, what
    assert core.list_namespaced_pod(chaos_namespace, label_selector=SELECTOR).items  # what it may do, it can


def test_kube_system_is_refused_by_the_tool_and_by_the_server(cluster, chaos_namespace, chaos_kubeconfig):
    refused = chaos(chaos_kubeconfig, "--namespace", "kube-system", "--selector", "k8s-app=kube-dns", "--rounds", "1")
    assert refused.returncode == 2 and "refused" in refused.stderr
    forced = chaos(chaos_kubeconfig, "--namespace", "kube-system", "--selector", "k8s-app=kube-dns", "--rounds", "1",
                   "--i-know-what-i-am-doing")
    assert forced.returncode == 1
    assert "403 Forbidden" in forced.stderr and "chaos/deploy/rbac.yaml" in forced.stderr, forced.stderr


@pytest.mark.parametrize("manifest", ["deployment.yaml", "cronjob.yaml"])
def test_the_in_cluster_chaos_manifests_are_accepted(cluster, chaos_namespace, manifest):
    result = cluster.kubectl("apply", "--server-side", "--dry-run=server", "-f",
                             str(REPO_ROOT / "chaos" / "deploy" / manifest))
    assert not cluster.warnings(result), result.stderr
    assert "serverside-applied (server dry run)" in result.stdout
