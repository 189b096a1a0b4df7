"""`python -m chaos k8s` through the real Kubernetes client, over real HTTP, to a stand-in API
server on loopback (there is no cluster here). The stand-in answers the two calls the tool makes
(list pods, delete a pod) in the API's JSON and records every request, so these tests see what a
real API server would receive: the label and field selectors, the grace period, the uid
precondition, and nothing else (no other verbs, no other namespaces)."""

import io
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

import chaos.__main__ as cli
from lab.host.procs import LOOPBACK, wait_until
from tests.conftest import REPO_ROOT

POD_PATH = "/api/v1/namespaces/demo/pods"


def pod_json(name, phase="Running", terminating=False):
    metadata = {"name": name, "namespace": "demo", "uid": f"uid-{name}",
                "labels": {"app.kubernetes.io/name": "webgatos"}}
    if terminating:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"containers": [{"name": "web", "image": "webgatos"}], "nodeName": "node-1"},
            "status": {"phase": phase}}


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__((LOOPBACK, 0), FakeApiHandler)
        self.pods = {p["metadata"]["name"]: p for p in
                     (pod_json("web-0"), pod_json("web-1"), pod_json("web-2", terminating=True))}
        self.requests: list[dict] = []
        self.forbid_deletes = False
        self.list_statuses: list[int] = []  # statuses of the next lists (200: the pods), then 200
        self.lock = threading.Lock()


class FakeApiHandler(BaseHTTPRequestHandler):
    server: FakeApiServer

    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, reason):
        self.reply(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code,
                          "message": reason})

    def record(self, body=None):
        url = urlsplit(self.path)
        with self.server.lock:
            self.server.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                         "body": body, "auth": self.headers.get("Authorization")})

    def do_GET(self):
        self.record()
        if urlsplit(self.path).path != POD_PATH:
            return self.status(404, "NotFound")
        code = self.server.list_statuses.pop(0) if self.server.list_statuses else 200
        if code != 200:
            return self.status(code, {403: "Forbidden", 500: "InternalError"}[code])
        # A real server applies both selectors; the tool filters again, which the terminating pod checks.
        self.reply(200, {"kind": "PodList", "apiVersion": "v1", "metadata": {},
                         "items": list(self.server.pods.values())})

    def do_DELETE(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        self.record(body)
        path = urlsplit(self.path).path
        name = path.rsplit("/", 1)[-1]
        if self.server.forbid_deletes:
            return self.status(403, "Forbidden")
        if not path.startswith(POD_PATH + "/") or name not in self.server.pods:
            return self.status(404, "NotFound")
        if body.get("preconditions", {}).get("uid") != self.server.pods[name]["metadata"]["uid"]:
            return self.status(409, "Conflict")
        self.reply(200, self.server.pods.pop(name))


@pytest.fixture
def api_server():
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def kubeconfig(api_server, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": f"http://{LOOPBACK}:{api_server.server_port}"}}],
        "users": [{"name": "lab", "user": {"token": "test-token"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab", "namespace": "default"}}],
    }))
    return path


def run(kubeconfig, *argv):
    out = io.StringIO()
    code = cli.main(["k8s", "--kubeconfig", str(kubeconfig), "--namespace", "demo",
                     "--selector", "app.kubernetes.io/name=webgatos", "--interval", "50ms", *argv], out=out)
    return code, out.getvalue()


def test_lists_with_both_selectors_and_deletes_with_grace_and_uid(api_server, kubeconfig, tmp_path):
    summary_path = tmp_path / "summary.json"
    code, out = run(kubeconfig, "--rounds", "2", "--grace-period", "0", "--summary-json", str(summary_path))
    assert code == 0, out

    lists = [r for r in api_server.requests if r["method"] == "GET"]
    deletes = [r for r in api_server.requests if r["method"] == "DELETE"]
    assert {r["method"] for r in api_server.requests} == {"GET", "DELETE"}
    assert len(lists) == 3  # the plan's look, then one per round
    for request in lists:
        assert request["path"] == POD_PATH
        assert request["query"]["labelSelector"] == ["app.kubernetes.io/name=webgatos"]
        assert request["query"]["fieldSelector"] == ["status.phase=Running"]
        assert request["auth"] == "Bearer test-token"
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in deletes) == ["web-0", "web-1"]  # web-2 is terminating
    for request in deletes:
        name = request["path"].rsplit("/", 1)[-1]
        assert request["query"]["gracePeriodSeconds"] == ["0"]
        assert request["body"]["gracePeriodSeconds"] == 0
        assert request["body"]["preconditions"]["uid"] == f"uid-{name}"
    summary = json.loads(summary_path.read_text())
    assert summary["killed"] == 2 and [k["node"] for k in summary["kills"]] == ["node-1", "node-1"]
    assert "chaos k8s: 2 pod(s) match now: web-0, web-1" in out


def test_default_grace_period_sends_none(api_server, kubeconfig):
    code, _ = run(kubeconfig, "--rounds", "1")
    (delete,) = [r for r in api_server.requests if r["method"] == "DELETE"]
    assert code == 0
    assert "gracePeriodSeconds" not in delete["query"] and "gracePeriodSeconds" not in delete["body"]


def test_dry_run_sends_no_delete(api_server, kubeconfig):
    code, out = run(kubeconfig, "--rounds", "2", "--count", "all", "--dry-run")
    assert code == 0 and out.count(" would-kill ") == 4
    assert {r["method"] for r in api_server.requests} == {"GET"}


def test_forbidden_delete_stops_the_run_with_the_rbac_hint(api_server, kubeconfig):
    api_server.forbid_deletes = True
    code, out = run(kubeconfig, "--rounds", "5")
    assert code == 1
    assert len([r for r in api_server.requests if r["method"] == "DELETE"]) == 1
    assert "403 Forbidden" in out and "chaos/deploy/rbac.yaml" in out and "stopped_by=error" in out


def test_a_failing_list_costs_one_round_not_the_run(api_server, kubeconfig, tmp_path):
    api_server.list_statuses = [200, 500]  # the first look works, round 1's list fails
    summary_path = tmp_path / "summary.json"
    code, out = run(kubeconfig, "--rounds", "2", "--summary-json", str(summary_path))
    assert code == 0
    summary = json.loads(summary_path.read_text())
    assert summary["rounds"] == 2 and summary["empty_rounds"] == 1 and summary["killed"] == 1
    assert summary["api_errors"] == ["listing pods in demo: 500 Internal Server Error"]
    assert ' api-error target=k8s reason="listing pods in demo: 500' in out


def test_a_forbidden_first_look_refuses_to_start(api_server, kubeconfig, capsys):
    api_server.list_statuses = [403]
    code, out = run(kubeconfig, "--rounds", "1")
    assert code == 1 and out == ""
    err = capsys.readouterr().err.strip()
    assert err.startswith("chaos k8s: listing pods in demo: 403 Forbidden; ") and "\n" not in err
    assert [r["method"] for r in api_server.requests] == ["GET"]


def test_as_a_process_it_reads_kubeconfig_from_the_environment_and_stops_on_sigterm(api_server, kubeconfig,
                                                                                      procs, tmp_path):
    """How scripts/cluster/under-chaos.sh runs it: $KUBECONFIG (here a list, as kubectl allows), in
    the background, ended with SIGTERM when the load test is over."""
    summary_path = tmp_path / "summary.json"
    env = {**os.environ, "KUBECONFIG": f"{tmp_path / 'absent'}:{kubeconfig}"}
    chaos = procs.start("chaos", [sys.executable, "-m", "chaos", "k8s", "--namespace", "demo",
                                  "--selector", "app.kubernetes.io/name=webgatos", "--interval", "200ms",
                                  "--summary-json", str(summary_path)], env=env, cwd=REPO_ROOT)
    wait_until(lambda: any(r["method"] == "DELETE" for r in api_server.requests), 30, "a delete", proc=chaos)
    chaos.signal(signal.SIGTERM)
    assert chaos.popen.wait(timeout=30) == 0, chaos.log_tail()
    summary = json.loads(summary_path.read_text())
    deletes = [r for r in api_server.requests if r["method"] == "DELETE"]
    assert summary["stopped_by"] == "signal" and summary["killed"] == len(deletes) >= 1
    assert "summary target=k8s" in chaos.log_path.read_text().splitlines()[-1]
