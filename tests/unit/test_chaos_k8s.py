"""The Kubernetes target and the `python -m chaos k8s` command line.

There is no API server here, so the client is replaced at its boundary by `StandInCoreV1Api`: it
answers `list_namespaced_pod` and `delete_namespaced_pod` with the client's own models (V1Pod,
V1PodList, ApiException), and checks every call against the real CoreV1Api method signatures, so
a call the real client would reject fails here too. What matters (which pods, how many, which
refusals) lives in plain functions and is tested without it.
"""

import inspect
import io
import json
import random
import threading
from datetime import UTC, datetime

import pytest
from kubernetes.client import (
    ApiException,
    CoreV1Api,
    V1DeleteOptions,
    V1ObjectMeta,
    V1Pod,
    V1PodList,
    V1PodSpec,
    V1PodStatus,
)

import chaos.__main__ as cli
from chaos.core import GONE, KILLED, Plan, run_rounds
from chaos.k8s import KubernetesTarget, is_candidate, signal_for


def pod(name, phase="Running", terminating=False, labels=None, namespace="demo"):
    return V1Pod(metadata=V1ObjectMeta(name=name, namespace=namespace, uid=f"uid-{name}",
                                       labels=labels or {"app.kubernetes.io/name": "webgatos"},
                                       deletion_timestamp=datetime.now(UTC) if terminating else None),
                 spec=V1PodSpec(containers=[], node_name="node-1"), status=V1PodStatus(phase=phase))


class StandInCoreV1Api:
    """Stands in for kubernetes.client.CoreV1Api (no API server here). Pods live in a dict per
    namespace; the label selector is applied for the simple `k=v[,k=v]` form the tests use."""

    def __init__(self, pods, delete_errors=None):
        self.pods = {}
        for p in pods:
            self.pods.setdefault(p.metadata.namespace, {})[p.metadata.name] = p
        self.delete_errors = dict(delete_errors or {})  # pod name -> HTTP status to fail with
        self.list_calls: list[dict] = []
        self.deleted: list[dict] = []

    @staticmethod
    def _bind(method, *args, **kwargs):
        return inspect.signature(getattr(CoreV1Api, method)).bind(None, *args, **kwargs).arguments

    def list_namespaced_pod(self, *args, **kwargs):
        call = self._bind("list_namespaced_pod", *args, **kwargs)
        self.list_calls.append(call)
        wanted = dict(term.split("=", 1) for term in call["label_selector"].split(","))
        items = [p for p in self.pods.get(call["namespace"], {}).values()
                 if all(p.metadata.labels.get(k) == v for k, v in wanted.items())]
        # field_selector=status.phase=Running is honoured by the server; keep the others to check
        # that the client-side filter holds anyway.
        return V1PodList(items=items)

    def delete_namespaced_pod(self, *args, **kwargs):
        call = self._bind("delete_namespaced_pod", *args, **kwargs)
        name, namespace = call["name"], call["namespace"]
        status = self.delete_errors.pop(name, None)
        if status is None and name not in self.pods.get(namespace, {}):
            status = 404
        if status is not None:
            raise ApiException(status=status, reason={403: "Forbidden", 404: "Not Found", 409: "Conflict",
                                                      500: "Internal Server Error"}[status])
        body: V1DeleteOptions = call["body"]
        if body.preconditions.uid != self.pods[namespace][name].metadata.uid:
            raise ApiException(status=409, reason="Conflict")
        self.deleted.append(call)
        del self.pods[namespace][name]
        return self.pods


def test_only_running_pods_not_already_terminating_are_candidates():
    assert is_candidate(pod("a"))
    assert not is_candidate(pod("b", phase="Pending"))
    assert not is_candidate(pod("c", phase="Succeeded"))
    assert not is_candidate(pod("d", phase="Failed"))
    assert not is_candidate(pod("e", terminating=True))
    assert not is_candidate(V1Pod(metadata=V1ObjectMeta(name="f")))


def test_target_lists_one_namespace_by_selector_and_keeps_running_pods():
    api = StandInCoreV1Api([pod("web-1"), pod("web-2", phase="Pending"), pod("web-3", terminating=True),
                            pod("other", labels={"app": "other"}), pod("web-4", namespace="elsewhere")])
    target = KubernetesTarget(api, "demo", "app.kubernetes.io/name=webgatos")
    assert [v.name for v in target.candidates()] == ["web-1"]
    call = api.list_calls[0]
    assert call["namespace"] == "demo"
    assert call["label_selector"] == "app.kubernetes.io/name=webgatos"
    assert call["field_selector"] == "status.phase=Running"


@pytest.mark.parametrize("grace", [None, 0, 7])
def test_kill_deletes_that_pod_with_its_uid_and_the_grace_period(grace):
    api = StandInCoreV1Api([pod("web-1")])
    target = KubernetesTarget(api, "demo", "app.kubernetes.io/name=webgatos", grace_period=grace)
    assert target.kill(target.candidates()[0]) == KILLED
    call = api.deleted[0]
    assert (call["name"], call["namespace"], call["grace_period_seconds"]) == ("web-1", "demo", grace)
    assert call["body"].preconditions.uid == "uid-web-1" and call["body"].grace_period_seconds == grace


def test_kill_reports_a_pod_that_is_gone_or_was_replaced_and_counts_other_errors():
    api = StandInCoreV1Api([pod("web-1"), pod("web-2"), pod("web-3")], delete_errors={"web-3": 500})
    target = KubernetesTarget(api, "demo", "app.kubernetes.io/name=webgatos")
    web1, web2, web3 = target.candidates()
    del api.pods["demo"]["web-1"]
    api.pods["demo"]["web-2"] = pod("web-2")
    api.pods["demo"]["web-2"].metadata.uid = "a-new-pod"  # same name, another pod (a StatefulSet's)
    assert target.kill(web1) == GONE
    assert target.kill(web2) == GONE
    assert target.kill(web3) == "failed"
    assert target.errors == ["deleting pod web-3: 500 Internal Server Error"]
    assert "web-2" in api.pods["demo"]


def test_signal_follows_the_grace_period():
    assert signal_for(0) == "SIGKILL"
    assert signal_for(None) == signal_for(30) == "SIGTERM"


@pytest.mark.parametrize("count, per_round", [("one", 1), ("2", 2), ("50%", 2), ("all", 4), ("10", 4)])
def test_count_modes_against_the_stand_in(count, per_round):
    api = StandInCoreV1Api([pod(f"web-{i}") for i in range(4)])
    target = KubernetesTarget(api, "demo", "app.kubernetes.io/name=webgatos", grace_period=0)
    summary = run_rounds(Plan("k8s", "pods", "SIGKILL", interval=0.05, count=cli.parse_count(count), rounds=1),
                         target.candidates, target.kill, threading.Event(), io.StringIO(), random.Random(3))
    assert summary["killed"] == per_round == len(api.deleted)
    assert len({c["name"] for c in api.deleted}) == per_round


@pytest.fixture
def connected(monkeypatch):
    """Make the command line use a stand-in instead of a real cluster; returns the stand-in."""
    api = StandInCoreV1Api([pod(f"webgatos-{i}") for i in range(3)] + [pod("pending", phase="Pending")])
    connections = []

    def connect(args):
        connections.append(args)
        return api

    monkeypatch.setattr(cli, "connect", connect)
    api.connections = connections
    return api


def run_cli(*argv):
    out = io.StringIO()
    code = cli.main(["k8s", *argv], out=out)
    return code, out.getvalue()


BASE = ["--namespace", "demo", "--selector", "app.kubernetes.io/name=webgatos", "--interval", "50ms"]


def test_cli_announces_the_plan_then_kills_and_sums_up(connected, tmp_path):
    summary_path = tmp_path / "summary.json"
    code, out = run_cli(*BASE, "--rounds", "2", "--grace-period", "0", "--seed", "1",
                        "--summary-json", str(summary_path))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("chaos k8s: will kill 1 of the Running pods matching "
                               "'app.kubernetes.io/name=webgatos' in namespace 'demo' (grace period 0s: SIGKILL) "
                               "every 0.05s, 2 round(s)")
    assert lines[1] == "chaos k8s: 3 pod(s) match now: webgatos-0, webgatos-1, webgatos-2"
    kill_lines = [line for line in lines if " killed " in line]
    assert len(kill_lines) == 2 and all("namespace=demo" in line and "signal=SIGKILL" in line for line in kill_lines)
    summary = json.loads(summary_path.read_text())
    assert summary["killed"] == 2 and summary["rounds"] == 2 and summary["namespace"] == "demo"
    assert [k["victim"] for k in summary["kills"]] == [c["name"] for c in connected.deleted]
    assert all(c["grace_period_seconds"] == 0 for c in connected.deleted)


def test_cli_dry_run_deletes_nothing(connected):
    code, out = run_cli(*BASE, "--rounds", "2", "--count", "all", "--dry-run")
    assert code == 0
    assert connected.deleted == []
    assert out.count(" would-kill ") == 6 and "DRY RUN" in out.splitlines()[0]


def test_cli_default_grace_period_is_the_pods_own(connected):
    code, _ = run_cli(*BASE, "--rounds", "1")
    assert code == 0 and connected.deleted[0]["grace_period_seconds"] is None


def test_cli_stops_with_exit_1_and_an_rbac_hint_when_deletes_are_forbidden(connected, capsys):
    connected.delete_errors = {f"webgatos-{i}": 403 for i in range(3)}
    code, out = run_cli(*BASE, "--rounds", "3")
    assert code == 1
    assert "403 Forbidden" in out and "needs list and delete on pods" in out
    assert "stopped_by=error" in out.splitlines()[-1]


@pytest.mark.parametrize("argv, message", [
    (["--selector", "app=x"], "--namespace is required"),
    (["--namespace", "kube-system", "--selector", "app=x"], "refusing namespace 'kube-system'"),
    (["--namespace", "istio-system", "--selector", "app=x"], "refusing namespace 'istio-system'"),
    (["--namespace", "prod", "--deny-namespace", "prod", "--selector", "app=x"], "refusing namespace 'prod'"),
    (["--namespace", "demo"], "--selector is required and must not be empty"),
    (["--namespace", "demo", "--selector", ""], "--selector is required and must not be empty"),
    (["--namespace", "demo", "--selector", "app!=x"], "only excludes pods"),
    (["--namespace", "demo", "--selector", "app=x", "--count", "0%"], "percentage must be above 0%"),
    (["--namespace", "demo", "--selector", "app=x", "--count", "120%"], "at most 100%"),
    (["--namespace", "demo", "--selector", "app=x", "--interval", "0"], "--interval must be positive"),
    (["--namespace", "demo", "--selector", "app=x", "--interval=-15s"], "--interval must be positive"),
    (["--namespace", "demo", "--selector", "app=x", "--duration", "0s"], "--duration must be positive"),
])
def test_cli_refusals_exit_2_before_touching_the_cluster(connected, capsys, argv, message):
    code, out = run_cli(*argv)
    assert code == 2
    assert out == ""
    err = capsys.readouterr().err.strip()
    assert err.startswith("chaos k8s: refused: ") and message in err and "\n" not in err
    assert connected.connections == []


def test_cli_force_flag_allows_a_denied_namespace(connected):
    connected.pods["kube-system"] = {"dns": pod("dns", namespace="kube-system")}
    code, out = run_cli("--namespace", "kube-system", "--selector", "app.kubernetes.io/name=webgatos",
                        "--i-know-what-i-am-doing", "--interval", "50ms", "--rounds", "1", "--dry-run")
    assert code == 0 and " would-kill " in out


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--grace-period", "-1"], ["--rounds", "1", "--duration", "1m"]])
def test_cli_argument_errors_exit_2(connected, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*BASE, *argv)
    assert exit_info.value.code == 2
    assert connected.connections == []


def test_cli_without_a_cluster_fails_with_one_line(monkeypatch, tmp_path, capsys):
    missing = tmp_path / "no-such-kubeconfig"
    code, _ = run_cli(*BASE, "--kubeconfig", str(missing), "--rounds", "1")
    assert code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("chaos k8s: cannot reach the cluster: ") and "\n" not in err
