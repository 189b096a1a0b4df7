"""The other manifests users apply by hand or through the demos are accepted by the real API
server, with no warning: kube-monkey (kustomize), Locust's master and workers, and the Locust Job
that scripts/cluster/loadtest.sh creates for every demo's load test."""

import os
import subprocess

from chartlib import REPO_ROOT


def test_make_kube_monkey_applies(cluster):
    from lab.host import binaries

    result = subprocess.run(["make", "-s", "kube-monkey", f"KUBECTL={binaries.control_plane('kubectl')}"],
                            capture_output=True, text=True, cwd=REPO_ROOT, env=cluster.plane.env(), timeout=120)
    assert result.returncode == 0, result.stderr + result.stdout
    assert not cluster.warnings(result), result.stderr
    deployment = cluster.get("deployment", "kube-monkey", "--namespace", "kube-monkey")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "kube-monkey"
    config = cluster.get("configmap", "--namespace", "kube-monkey")["items"]
    assert any(item["metadata"]["name"].startswith("kube-monkey-config") for item in config)
    # Its pods are admitted under the namespace's own `restricted` label.
    replicasets = cluster.wait_for(lambda: cluster.items("replicasets", "kube-monkey"), 30, "kube-monkey's ReplicaSet")
    refused = [e["message"] for e in cluster.items("events", "kube-monkey") if e.get("reason") == "FailedCreate"]
    assert replicasets and not refused, refused


def test_locust_master_and_workers_apply(cluster, namespace):
    result = cluster.kubectl("apply", "--server-side", "--namespace", namespace, "-f",
                             str(REPO_ROOT / "loadtests" / "k8s" / "locust.yaml"))
    assert not cluster.warnings(result), result.stderr
    names = {d["metadata"]["name"] for d in cluster.items("deployments", namespace)}
    assert {"locust-master", "locust-worker"} <= names
    pods = cluster.wait_for(lambda: cluster.items("pods", namespace), 30, "Locust's Pods")
    assert pods


def test_the_demos_locust_job_applies(cluster, namespace):
    job = subprocess.run([str(REPO_ROOT / "scripts" / "cluster" / "loadtest.sh"), namespace, "check", "--",
                          "-f", "loadtests/locustfile.py", "--headless", "WebgatosUser"],
                         capture_output=True, text=True, check=True, cwd=REPO_ROOT, timeout=30,
                         env={**os.environ, "LOADTEST_PRINT_JOB": "1"}).stdout
    result = cluster.kubectl("apply", "--server-side", "--namespace", namespace, "-f", "-", input_text=job)
    assert not cluster.warnings(result), result.stderr
    pods = cluster.wait_for(lambda: cluster.items("pods", namespace, "job-name=loadtest-check"), 30, "the Job's Pod")
    assert pods[0]["spec"]["containers"][0]["args"][:2] == ["-f", "/loadtests/locustfile.py"]
