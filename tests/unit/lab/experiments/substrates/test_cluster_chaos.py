"""The chaos tool on a cluster with exactly its own RBAC, as data: its Role moved into the case's
namespace unchanged, a kubeconfig that carries the ServiceAccount's token and nothing of the
admin's, and a command line the tool's own parser accepts (no process is started here)."""

import yaml

from chaos.__main__ import build_parser
from chaos.core import check_selector
from lab.experiments.substrates import cluster_chaos as chaos

ADMIN = {"apiVersion": "v1", "kind": "Config", "current-context": "host-pytest",
         "clusters": [{"name": "other", "cluster": {"server": "https://elsewhere:6443"}},
                      {"name": "c", "cluster": {"server": "https://10.250.0.1:6443",
                                                "certificate-authority-data": "Q0E="}}],
         "users": [{"name": "admin", "user": {"client-certificate-data": "Q0VSVA==", "client-key-data": "S0VZ"}}],
         "contexts": [{"name": "host-pytest", "context": {"cluster": "c", "user": "admin"}}]}


def test_rbac_moves_into_the_cases_namespace_with_the_same_rules():
    original = [doc for doc in yaml.safe_load_all(chaos.RBAC.read_text()) if doc]
    moved = chaos.rbac_documents("rl-chaos-redis-1")
    assert [d["kind"] for d in moved] == ["ServiceAccount", "Role", "RoleBinding"]
    assert {d["metadata"]["namespace"] for d in moved} == {"rl-chaos-redis-1"}
    (binding,) = [d for d in moved if d["kind"] == "RoleBinding"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": chaos.SERVICE_ACCOUNT,
                                    "namespace": "rl-chaos-redis-1"}]
    role = next(d for d in moved if d["kind"] == "Role")
    assert role["rules"] == next(d for d in original if d["kind"] == "Role")["rules"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "delete"]}]


def test_the_token_kubeconfig_keeps_the_cluster_and_drops_the_admin():
    config = chaos.token_kubeconfig(ADMIN, "TOKEN", "rl-x")
    assert config["clusters"] == [{"name": "chaos", "cluster": ADMIN["clusters"][1]["cluster"]}]
    assert config["users"] == [{"name": "system:serviceaccount:rl-x:pod-chaos", "user": {"token": "TOKEN"}}]
    assert config["contexts"][0]["context"]["namespace"] == "rl-x"
    assert "Q0VSVA==" not in yaml.safe_dump(config) and "S0VZ" not in yaml.safe_dump(config)


def test_the_command_line_is_one_the_chaos_tool_accepts(tmp_path):
    argv = chaos.chaos_argv(tmp_path / "kubeconfig", "rl-x", 7.5, 15, tmp_path / "summary.json")
    assert argv[1:4] == ["-m", "chaos", "k8s"]
    args = build_parser().parse_args(argv[3:])
    assert (args.namespace, args.interval, args.duration, args.grace_period) == ("rl-x", "7.5s", "15s", 0)
    assert args.kubeconfig == str(tmp_path / "kubeconfig")
    assert check_selector(args.selector) == "app.kubernetes.io/name=webgatos,app.kubernetes.io/component=web"


def test_only_deleted_pods_count_as_kills():
    summary = {"kills": [{"result": "killed", "epoch": 1.0}, {"result": "gone", "epoch": 2.0},
                         {"result": "failed", "epoch": 3.0}, {"result": "killed", "epoch": 4.0}]}
    assert [k["epoch"] for k in chaos.killed(summary)] == [1.0, 4.0]
    assert chaos.killed({}) == []
