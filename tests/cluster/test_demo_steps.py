"""`make demo-CASE` on a real API server (the lab's kube-apiserver, no kubelet, no Istio): the
pattern rule reaches the one runner with the cluster substrate, and bad input stops it before any
change, with one line that says what to do: an unknown context names `make cluster-up`, a case
with a mesh profile on a cluster without istiod names `make istio-install`. Whether the cases
then measure what they must is the host cluster's job (tests/cluster/host/)."""

import os
import subprocess
import uuid

import yaml
from chartlib import REPO_ROOT

from lab.experiments import cases
from lab.host import binaries


def context_of(cluster) -> str:
    return yaml.safe_load(cluster.plane.admin_kubeconfig.read_text())["current-context"]


def demo_env(cluster) -> dict[str, str]:
    tools = os.path.dirname(binaries.control_plane("kubectl"))
    knobs = ("MAKE", "KUBE_CONTEXT", "CLUSTER", "DEMO_", "KEEP")
    env = {k: v for k, v in cluster.plane.env().items() if not k.startswith(knobs)}
    return {**env, "PATH": os.pathsep.join([tools, env["PATH"]])}


def make(cluster, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", "--no-print-directory", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, env=demo_env(cluster), timeout=300, stdin=subprocess.DEVNULL)


def namespaces(cluster) -> set[str]:
    return {item["metadata"]["name"] for item in cluster.get("namespaces")["items"]}


def test_an_unknown_context_names_the_cluster_up_to_run(cluster, tmp_path):
    argv = [str(REPO_ROOT / ".venv" / "bin" / "python"), "-m", "lab", "demo", "--substrate", "cluster",
            "--context", "kind-no-such", "--cases", "redis-2", "--out", str(tmp_path / "o")]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=REPO_ROOT, env=demo_env(cluster), timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1 and "'kind-no-such'" in result.stderr
    assert "make cluster-up CLUSTER=kind" in result.stderr
    assert not (tmp_path / "o").exists()


def test_the_pattern_rule_runs_a_group_and_refuses_istio_cases_without_istio(cluster):
    before = namespaces(cluster)
    prefix = f"d{uuid.uuid4().hex[:4]}-"
    result = make(cluster, "demo-istio", f"KUBE_CONTEXT={context_of(cluster)}", f"DEMO_NS_PREFIX={prefix}")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "chaos-redis-2-retries needs Istio" in output and "make istio-install" in output
    assert not [ns for ns in namespaces(cluster) - before if ns.startswith(prefix)]  # nothing was changed


def test_clean_removes_what_a_kept_case_left(cluster):
    prefix = f"d{uuid.uuid4().hex[:4]}-"
    group = cases.table().groups["chaos"].cases
    for name in group[:2]:
        cluster.kubectl("create", "namespace", f"{prefix}{name}")
    result = make(cluster, "demo-chaos-clean", f"KUBE_CONTEXT={context_of(cluster)}", f"DEMO_NS_PREFIX={prefix}")
    assert result.returncode == 0, result.stdout + result.stderr

    def gone() -> bool:
        left = {ns for ns in namespaces(cluster) if ns.startswith(prefix)}
        phases = {cluster.get("namespace", ns)["status"]["phase"] for ns in left}
        return not left or phases == {"Terminating"}
    cluster.wait_for(gone, 60, "the kept namespaces to go")
