"""The lab's node (lab/kube/node/), the kubelet stand-in, against the real API server and scheduler:
it registers a Ready Node that only tolerating Pods land on, runs the chart's Pods as processes
with their environment resolved from the Pod spec, reports status and restarts as a kubelet does,
and honours graceful deletion."""

import base64
import os
import signal
import threading
import time

import pytest
import requests
from chartlib import CHARTS_DIR, REPO_ROOT

from chaos.local import read_state

LAB_VALUES = str(REPO_ROOT / "lab" / "values" / "webgatos.yaml")
WEB = "app.kubernetes.io/component=web"


def pods(cluster, namespace, selector=WEB) -> list[dict]:
    return cluster.items("pods", namespace, selector)


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def install(cluster, namespace, *args):
    cluster.install("lab", namespace, CHARTS_DIR / "webgatos", "-f", LAB_VALUES, *args)
    return cluster.wait_for(lambda: (p := pods(cluster, namespace)) and all(ready(x) for x in p) and p, 60,
                            "the replicas to be ready on the lab node")


def test_node_is_ready_and_only_tolerating_pods_land_on_it(cluster, lab_node, namespace):
    node = cluster.get("node", lab_node.name)
    assert {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"] == "True"
    assert node["spec"]["taints"] == [{"key": "resilience-lab.io/lab-node", "value": "true", "effect": "NoSchedule"}]
    lease = cluster.get("lease", lab_node.name, "--namespace", "kube-node-lease")
    assert lease["spec"]["holderIdentity"] == lab_node.name
    # The chart without the lab's toleration: the scheduler leaves its Pods Pending.
    cluster.install("lab", namespace, CHARTS_DIR / "webgatos")
    event = cluster.wait_for(lambda: next((e for e in cluster.items("events", namespace)
                                           if e.get("reason") == "FailedScheduling"), None), 30, "FailedScheduling")
    assert "1 node(s) had untolerated taint(s)" in event["message"], event["message"]
    assert all(not p["spec"].get("nodeName") for p in pods(cluster, namespace))


def test_pods_run_with_their_resolved_environment_and_report_status(cluster, lab_node, namespace):
    running = install(cluster, namespace)
    secret = cluster.get("secret", "lab-webgatos", "--namespace", namespace)
    assert secret["data"]["secret-key"]
    for pod in running:
        run = next(r for r in lab_node.runs(namespace) if r.name == pod["metadata"]["name"])
        assert pod["spec"]["nodeName"] == lab_node.name
        assert pod["status"]["phase"] == "Running"
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["started"] and status["restartCount"] == 0
        assert status["containerID"] == f"lab://{run.pid}"
        # The environment as a kubelet resolves it: the chart's values, the Secret's key, HOSTNAME.
        assert run.env["SESSION_STORE"] == "memory" and run.env["HOSTNAME"] == run.name
        assert run.env["SECRET_KEY"] == base64.b64decode(secret["data"]["secret-key"]).decode()
        answer = requests.get(f"http://{run.address}:{run.port}/api/session", timeout=5)
        assert answer.status_code == 200 and answer.headers["X-Replica"] == run.name


def test_a_crashed_container_restarts_in_its_pod(cluster, lab_node, namespace):
    running = install(cluster, namespace, "--set", "replicaCount=1")
    name = running[0]["metadata"]["name"]
    run = next(r for r in lab_node.runs(namespace) if r.name == name)
    address, pid = run.address, run.pid
    state = lab_node.state_path(namespace)
    assert read_state(state)[0]["pid"] == pid
    killed_at = time.time()
    os.killpg(pid, signal.SIGKILL)
    pod = cluster.wait_for(lambda: (p := pods(cluster, namespace)[0]) and not ready(p) and p, 10,
                           "the Pod to be reported unready")
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["signal"] == signal.SIGKILL
    back = cluster.wait_for(lambda: (p := pods(cluster, namespace)[0]) and ready(p) and p, 30, "the restart")
    assert back["metadata"]["name"] == name  # the same Pod: a container restart, not a replacement
    assert back["status"]["containerStatuses"][0]["restartCount"] == 1
    assert run.address == address and run.pid != pid
    restarted = next(e for e in lab_node.events() if e["event"] == "restarted" and e.get("pod") == name)
    assert restarted["epoch"] - killed_at >= lab_node.restart_delay - 0.05
    assert read_state(state)[0] == {"name": name, "pid": run.pid, "address": f"{address}:{run.port}", "restarts": 1,
                                    "state": "running"}


def test_a_failing_liveness_probe_restarts_the_container(cluster, lab_node, namespace):
    install(cluster, namespace, "--set", "replicaCount=1", "--set", "probes.liveness.path=/no-such-page",
            "--set", "probes.liveness.periodSeconds=1", "--set", "probes.liveness.failureThreshold=2")
    pod = cluster.wait_for(lambda: (p := pods(cluster, namespace)[0])
                           and p["status"]["containerStatuses"][0]["restartCount"] >= 1 and p, 30,
                           "the liveness probe to restart the container")
    assert any(e["event"] == "probe-failed" and e.get("probe") == "liveness" and e.get("pod") == pod["metadata"]["name"]
               for e in lab_node.events())


def test_readiness_follows_the_store(cluster, lab_node, namespace, procs):
    """/readyz checks the store: a Redis that is gone makes the Pod unready, not dead."""
    from lab.host.procs import free_port
    port = free_port()
    redis = procs.redis(port)
    values = ["--set", "sessionStore.type=redis", "--set", "sessionStore.redis.bundled=false",
              "--set", "sessionStore.redis.external.host=127.0.0.1",
              "--set", f"sessionStore.redis.external.port={port}", "--set", "replicaCount=1"]
    install(cluster, namespace, *values)
    redis.stop(grace=1)
    pod = cluster.wait_for(lambda: (p := pods(cluster, namespace)[0]) and not ready(p) and p, 20,
                           "the Pod to turn unready without its store")
    assert pod["status"]["containerStatuses"][0]["restartCount"] == 0  # liveness is the process only


def test_deletion_runs_prestop_then_sigterm_and_removes_the_pod(cluster, lab_node, namespace):
    running = install(cluster, namespace, "--set", "replicaCount=1", "--set", "shutdown.preStopSleepSeconds=1",
                      "--set", "shutdown.drainSeconds=1")
    name = running[0]["metadata"]["name"]
    run = next(r for r in lab_node.runs(namespace) if r.name == name)
    deleted_at = time.time()
    cluster.kubectl("delete", "pod", name, "--namespace", namespace, "--wait=false")
    # The node deletes the Pod from the API, then records its end: wait for both (under load the
    # API answered 404 before the record was written).
    cluster.wait_for(lambda: cluster.kubectl("get", "pod", name, "--namespace", namespace,
                                             check=False).returncode != 0
                     and any(e["event"] == "terminated" and e.get("pod") == name for e in lab_node.events()),
                     60, "the node to remove the Pod")
    events = {e["event"]: e["epoch"] for e in lab_node.events() if e.get("pod") == name}
    assert events["sigterm"] - deleted_at >= 1.0 - 0.1  # after the preStop sleep
    assert "sigkill" not in events  # it stopped by itself within the grace period
    assert events["terminated"] >= events["sigterm"]
    terminated = next(e for e in lab_node.events() if e["event"] == "terminated" and e.get("pod") == name)
    assert terminated["returncode"] == 0  # gunicorn drained and exited cleanly
    assert run.gone


def test_an_image_the_node_cannot_run_waits_with_the_reason(cluster, lab_node, namespace):
    cluster.install("lab", namespace, CHARTS_DIR / "webgatos", "-f", LAB_VALUES, "--set", "image.repository=nginx",
                    "--set", "replicaCount=1")
    pod = cluster.wait_for(lambda: (p := pods(cluster, namespace)) and p[0]["status"].get("containerStatuses")
                           and p[0], 60, "the Pod's status from the lab node")
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ImageNotRunnableInLab" and "nginx" in waiting["message"], waiting
    assert pod["status"]["phase"] == "Pending" and not ready(pod)


@pytest.fixture
def procs(tmp_path):
    from lab.host.procs import ProcessGroup
    with ProcessGroup(tmp_path / "logs") as group:
        yield group


def test_the_newest_status_of_a_pod_is_the_one_that_stays(cluster, lab_node, namespace, monkeypatch):
    """Two reports of one Pod racing to the API server: the older one (not ready) is held up on
    its way, the newer one (ready) is sent meanwhile. The API must end with the newer."""
    running = install(cluster, namespace, "--set", "replicaCount=1")
    name = running[0]["metadata"]["name"]
    run = next(r for r in lab_node.runs(namespace) if r.name == name)
    monkeypatch.setattr(run, "probes", {})  # no probe verdict of its own meanwhile
    real_patch = lab_node._api.patch_namespaced_pod_status
    older_on_its_way = threading.Event()

    def patch_holding_up_the_older(pod_name, pod_namespace, body):
        if not ready({"status": body["status"]}) and not older_on_its_way.is_set():
            older_on_its_way.set()
            time.sleep(1.0)
        return real_patch(pod_name, pod_namespace, body)

    monkeypatch.setattr(lab_node._api, "patch_namespaced_pod_status", patch_holding_up_the_older)
    run.ready = False
    older = threading.Thread(target=lab_node._report, args=(run,))
    older.start()
    assert older_on_its_way.wait(5)
    run.ready = True
    lab_node._report(run)
    older.join(10)
    assert not older.is_alive()
    assert ready(pods(cluster, namespace)[0]), "the API server kept the older, not-ready status"
