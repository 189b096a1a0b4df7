"""The cluster substrate's inputs: the Helm arguments of every case of the table (the store's ci
values, replicas, the mesh profile or per-request balancing, the case's own values), the
namespace and its labels, where the load enters, and the one-line refusals of a context that is
missing or does not answer, before anything changes. The Helm renders and kubectl runs are marked
`processes`; the rest starts nothing."""

import pytest
import yaml

from lab.experiments import cases
from lab.experiments.substrates import CaseInputError
from lab.experiments.substrates import cluster as substrate
from lab.host.paths import CHARTS, REPO_ROOT
from lab.host.procs import free_port
from lab.kube.controlplane import RESTRICTED_LABELS
from lab.workloads.helm import run_helm

TABLE = cases.table()
SESSIONS = [case for case in TABLE.cases if case.workload == "sessions"]


def files(args: list[str]) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == "-f"]


def sets(args: list[str]) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg in ("--set", "--set-json")]


@pytest.mark.parametrize("case", SESSIONS, ids=lambda c: c.name)
def test_release_args_state_the_whole_case(case):
    args = substrate.release_args(case)
    assert all((REPO_ROOT / path).is_file() and not path.startswith("/") for path in files(args))
    assert files(args)[0] == f"charts/webgatos/ci/{'memory-2-replicas' if case.store == 'memory' else case.store}" \
                             "-values.yaml"
    assert f"replicaCount={case.replicas}" in sets(args)
    if case.mesh:
        assert f"istio/scenarios/{case.mesh}.yaml" in files(args)
        assert "scripts/cluster/values/per-request-balancing.yaml" not in files(args)
    else:  # the Service balances connections: each request must open a new one
        assert "scripts/cluster/values/per-request-balancing.yaml" in files(args)
    for key in case.values:
        assert any(item.startswith(f"{key}={{") for item in sets(args))


def test_case_values_go_in_as_json_and_stores_as_the_lab_runs_them():
    app_faults = TABLE.by_name("app-faults")
    assert "faults={\"errorRate\":0.3,\"errorStatus\":503}" in sets(substrate.release_args(app_faults))
    assert "sessionStore.hazelcast.replicas=2" in sets(substrate.release_args(TABLE.by_name("hazelcast-2")))
    assert "sessionStore.redis.persistence.enabled=false" in sets(substrate.release_args(TABLE.by_name("redis-2")))


@pytest.mark.processes
@pytest.mark.parametrize("case", SESSIONS, ids=lambda c: c.name)
def test_every_case_renders_with_its_arguments(case):
    rendered = run_helm("template", "webgatos", str(CHARTS / "webgatos"), "--namespace", "rl-x",
                        *substrate.release_args(case), cwd=REPO_ROOT).stdout
    documents = [doc for doc in yaml.safe_load_all(rendered) if doc]
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == "webgatos"  # the Service name target_url uses
    assert deployment["spec"]["replicas"] == case.replicas
    env = {e["name"]: e.get("value") for c in deployment["spec"]["template"]["spec"]["containers"]
           for e in c.get("env", [])}
    assert ("GUNICORN_CMD_ARGS" in env) == (not case.mesh)
    kinds = {d["kind"] for d in documents}
    assert ("VirtualService" in kinds) == ("PeerAuthentication" in kinds) == bool(case.mesh)


def test_namespaces_are_restricted_and_injected_only_for_a_mesh():
    for case in TABLE.cases:
        labels = substrate.namespace_labels(case)
        assert RESTRICTED_LABELS.items() <= labels.items()
        assert (labels.get("istio-injection") == "enabled") == bool(case.mesh)
        assert substrate.namespace_of(case) == f"rl-{case.name}"
    assert substrate.namespace_of(TABLE.by_name("redis-2"), "demo-") == "demo-redis-2"


def test_load_enters_at_the_service_or_the_ingress_gateway():
    assert substrate.target_url(TABLE.by_name("redis-2"), "rl-redis-2") == "http://webgatos.rl-redis-2.svc.cluster.local"
    assert substrate.target_url(TABLE.by_name("chaos-redis-2-retries"), "rl-x") == substrate.GATEWAY_URL


@pytest.mark.parametrize("context, hint", [("host-resilience-lab", "make cluster-up CLUSTER=host"),
                                           ("kind-resilience-lab", "make cluster-up CLUSTER=kind"),
                                           ("resilience-lab", "make cluster-up")])
def test_the_hint_names_the_cluster_up_that_creates_the_context(context, hint):
    assert substrate.cluster_up_hint(context) == hint


def test_constructing_touches_nothing():
    cluster = substrate.ClusterSubstrate("kind-demo", REPO_ROOT / "reports" / "nowhere")
    assert cluster.name == "cluster:kind-demo" and cluster.kube is None and cluster.private is None
    cluster.close()


def kubeconfig(tmp_path, context: str, server: str):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}]}))
    return path


@pytest.mark.processes
def test_a_missing_context_is_refused_naming_it_and_cluster_up(tmp_path):
    cluster = substrate.ClusterSubstrate("host-nosuch", kubeconfig=kubeconfig(tmp_path, "kind-other",
                                                                                "https://127.0.0.1:1"))
    with pytest.raises(CaseInputError, match=r"'host-nosuch' not found: run `make cluster-up CLUSTER=host`"):
        cluster.check(list(TABLE.cases))
    cluster.close()


@pytest.mark.processes
def test_an_unreachable_context_is_refused_before_anything_changes(tmp_path):
    server = f"https://127.0.0.1:{free_port()}"
    cluster = substrate.ClusterSubstrate(None, kubeconfig=kubeconfig(tmp_path, "kind-gone", server))
    assert cluster.name == "cluster:kind-gone"  # the kubeconfig's current context
    with pytest.raises(CaseInputError) as refused:
        cluster.check(list(TABLE.cases))
    assert str(refused.value) == (f"kube context 'kind-gone' does not answer ({server}): "
                                  "run `make cluster-up CLUSTER=kind`")
    assert "\n" not in str(refused.value)
    cluster.close()
    assert cluster.private is None
