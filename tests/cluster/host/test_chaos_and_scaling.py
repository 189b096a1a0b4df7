"""Failure and scale on real Pods: the chaos tool with its own RBAC token kills real Pods, the
ReplicaSet replaces them and the Service keeps answering with 2 replicas; the sqrt HPA scales on
the kubelet's real CPU figures, read through metrics-server."""

import subprocess
import sys
import time
import urllib.request

from chartlib import CHARTS_DIR, REPO_ROOT

from tests.cluster.host.conftest import SELECTOR_WEB

CHAOS_NAMESPACE = "rl-chaos"  # the namespace chaos/deploy/rbac.yaml grants
SELECTOR = f"app.kubernetes.io/name=webgatos,{SELECTOR_WEB}"


def chaos(kubeconfig, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chaos", "k8s", "--kubeconfig", str(kubeconfig), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)


def test_chaos_kills_real_pods_and_the_service_keeps_answering(host_tier, tmp_path):
    plane = host_tier.plane
    plane.create_namespace(CHAOS_NAMESPACE)
    try:
        host_tier.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "chaos" / "deploy" / "rbac.yaml"))
        host_tier.install("lab", CHAOS_NAMESPACE, CHARTS_DIR / "webgatos", "-f",
                          str(CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml"), "--set", "replicaCount=2",
                          "--set", "sessionStore.redis.persistence.enabled=false")
        token = plane.service_account_token(CHAOS_NAMESPACE, "pod-chaos")
        kubeconfig = plane.token_kubeconfig(tmp_path / "kubeconfig", token,
                                            "system:serviceaccount:rl-chaos:pod-chaos", CHAOS_NAMESPACE)
        before = {p["metadata"]["name"] for p in host_tier.ready_pods(CHAOS_NAMESPACE, SELECTOR)}
        url = host_tier.service_url(CHAOS_NAMESPACE, "lab-webgatos", replicas=2)
        statuses = []
        killer = subprocess.Popen(
            [sys.executable, "-m", "chaos", "k8s", "--kubeconfig", str(kubeconfig), "--namespace", CHAOS_NAMESPACE,
             "--selector", SELECTOR, "--interval", "10s", "--rounds", "2", "--seed", "3"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT, stdin=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while killer.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
                        statuses.append(response.status)
                except OSError as error:
                    statuses.append(str(error))
                time.sleep(0.1)
            out, err = killer.communicate(timeout=30)
        finally:
            killer.kill()
        assert killer.returncode == 0, err + out
        killed = [line.split("victim=", 1)[1].split()[0] for line in out.splitlines() if " killed " in line]
        assert len(killed) == 2 and killed[0] in before, out
        after = host_tier.wait_for(
            lambda: len(p := {x["metadata"]["name"] for x in host_tier.ready_pods(CHAOS_NAMESPACE, SELECTOR)}) == 2
            and not p & set(killed) and p, 90, "2 ready replacements", CHAOS_NAMESPACE)
        assert not after & set(killed)
        # Graceful deletion: each victim's endpoints went away before it stopped, so the Service answered.
        assert statuses and statuses.count(200) == len(statuses), statuses
        created = [e for e in host_tier.get("events", "--namespace", CHAOS_NAMESPACE)["items"]
                   if e.get("reason") == "SuccessfulCreate" and e["involvedObject"]["kind"] == "ReplicaSet"]
        assert len(created) >= 2 + 2
    finally:
        host_tier.kubectl("delete", "pods", "--all", "--namespace", CHAOS_NAMESPACE, "--force", "--grace-period=0",
                          check=False)
        host_tier.kubectl("delete", "namespace", CHAOS_NAMESPACE, "--wait=false", check=False)


def test_sqrt_hpa_scales_on_the_kubelets_cpu(host_tier, host_namespace):
    sqrt = CHARTS_DIR / "sqrt"
    host_tier.install("lab", host_namespace, sqrt, "-f", str(sqrt / "ci" / "load-generator-values.yaml"),
                      "--set", "kubeMonkey.enabled=false")

    def scaled():
        hpa = host_tier.get("hpa", "lab-sqrt", "--namespace", host_namespace)
        metrics = hpa.get("status", {}).get("currentMetrics") or []
        return hpa["status"].get("desiredReplicas", 0) > 2 and metrics and hpa
    hpa = host_tier.wait_for(scaled, 240, "the HPA to scale sqrt above 2 replicas", host_namespace, interval=2)
    utilization = hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
    assert utilization > 40, hpa["status"]
    top = host_tier.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{host_namespace}/pods")
    assert '"cpu"' in top.stdout
