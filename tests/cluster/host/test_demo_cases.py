"""Every case of the demo table (lab/experiments/cases.toml) on real Pods: the cluster substrate
runs it on the tier's host cluster through a kubeconfig context, as `make demo-<case>
CLUSTER=host` does (Helm, Locust as a Job in the cluster, the chaos tool with its own RBAC token),
for a short load, and the case's facts must hold there as in the lab. The records go through the
runner into reports/cluster/ (results.json and the report), and the last test prints the talk's
table from real Pods into the log.

Each session case's steady-state hypothesis ([case.hypothesis]) is judged by the substrate's own
Prometheus, which scrapes the case's Pods through the API server's proxy: it must hold, per phase,
with queries that name the case.

A case with a mesh profile needs Istio on the cluster: first refused without it, before anything
changes, then run after the tier's `istio` fixture installed it, with sidecars injected by istiod.
"""

import time

import pytest
import yaml

from lab.experiments import cases, report, runner, slo
from lab.experiments.substrates import CaseInputError
from lab.experiments.substrates.cluster import ClusterSubstrate
from lab.host.paths import REPO_ROOT
from lab.kube.hostcluster.layout import Layout
from tests.cluster.host.conftest import TIER_NAME

# Seconds of load per case: two kills for the chaos cases (every 8 s), a few hundred users, and
# phases of 8 s or more, so that each holds several 1 s scrapes through the API server even on a
# busy machine (a phase with fewer than two scrapes of a series cannot be judged).
SECONDS = 24.0
# Where `make test` (tools/test_tiers.py) finds these results to print beside the lab's.
OUT = REPO_ROOT / "test-artifacts" / "demo-cluster"
TABLE = cases.table()
CONTEXT = Layout(TIER_NAME).context  # the name `make cluster-up CLUSTER=host` would give it


@pytest.fixture(scope="module")
def demo(host_tier, tmp_path_factory):
    """The cluster substrate on the tier's cluster, and the records of the cases run so far."""
    admin = yaml.safe_load(host_tier.cluster.kubeconfig.read_text())
    for context in admin["contexts"]:
        context["name"] = CONTEXT
    admin["current-context"] = CONTEXT
    kubeconfig = tmp_path_factory.mktemp("demo-cases") / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(admin))
    substrate = ClusterSubstrate(CONTEXT, kubeconfig=kubeconfig, seconds=SECONDS)
    substrate.check([])
    runner.clear(OUT)
    state = {"substrate": substrate, "records": [], "skipped": [], "seconds": {}}
    yield state
    substrate.close()


def run_case(demo, case) -> dict:
    start = time.monotonic()
    records, problems = runner.run_cases([case], demo["substrate"], SECONDS, OUT, runner.echo)
    demo["seconds"][case.name] = round(time.monotonic() - start, 1)
    assert not problems, records[0].get("skipped")
    demo["records"].append(records[0])
    return records[0]


def own_facts(case) -> list:
    """The facts that read this case's record only (the others wait for the table test)."""
    return [fact for fact in case.facts if fact.cases == (case.name,)]


def assert_facts(facts, records) -> None:
    broken = [f"{fact.says}: {report.measured(fact, records)}" for fact, ok in report.fact_results(records, facts)
              if ok is False]
    assert not broken, "on real Pods: " + "; ".join(broken)


def assert_hypothesis_held(case, record) -> None:
    """Judged by Prometheus over the phases the hypothesis names, each query selecting this case."""
    if case.workload != "sessions" or not slo.hypothesis_of(case):
        return
    verdict = record.get("slo")
    assert verdict, "no SLO verdict in the record"
    misses = [f"{phase}: {entry['check']} {entry['value']} ({entry['reason']}) {entry['promql']}"
              for phase, entries in verdict["phases"].items() for entry in entries if not entry["ok"]]
    assert verdict["verdict"] == "held", f"{verdict['verdict']}: {misses or verdict['notes']}"
    assert verdict["phases"] and set(verdict["phases"]) <= set(case.hypothesis.phases), verdict["phases"]
    entries = [entry for entries in verdict["phases"].values() for entry in entries]
    assert entries and all(f'case="{case.name}"' in entry["promql"] for entry in entries), entries
    assert verdict["totals"]["requests"] > 0, verdict["totals"]


@pytest.mark.parametrize("case", [c for c in TABLE.cases if not c.mesh], ids=lambda c: c.name)
def test_case_on_real_pods(demo, case):
    record = run_case(demo, case)
    assert record["substrate"] == f"cluster:{CONTEXT}"
    assert set(record["phases"]) <= {"baseline", "fault", "recovery"} and record["phases"]
    if case.workload == "sessions":
        assert record["users_created"] > 0 and record["requests"] > 0, record
        assert record["series"], "Locust's timeline came back empty"
        if case.chaos:
            assert record["kills"] >= 1 and len(record["kill_times_s"]) == record["kills"], record["chaos_summary"]
            assert "fault" in record["phases"]
    assert_facts(own_facts(case), demo["records"])
    assert_hypothesis_held(case, record)


def test_a_mesh_case_without_istio_is_refused_before_anything_changes(demo, host_tier):
    substrate = demo["substrate"]
    if substrate.istio_installed():
        pytest.skip("Istio is installed on the host cluster")
    meshed = [case for case in TABLE.cases if case.mesh]
    with pytest.raises(CaseInputError, match=r"need Istio, which context 'host-pytest' does not have .*"
                                             r"run `make istio-install`"):
        substrate.check(meshed)
    names = {ns["metadata"]["name"] for ns in host_tier.get("namespaces")["items"]}
    assert not names & {f"rl-{case.name}" for case in meshed}


@pytest.mark.parametrize("case", [c for c in TABLE.cases if c.mesh], ids=lambda c: c.name)
def test_mesh_case_on_real_pods(demo, istio, case):
    """After the refusal above: `istio` installs the pinned Istio (make istio-install) once."""
    assert demo["substrate"].istio_installed()
    record = run_case(demo, case)
    assert record["mesh"] == case.mesh
    injected = record["pods_with_istio_proxy"]
    assert len(injected) == case.replicas and all(injected.values()), injected  # istiod's webhook, for real
    assert_facts(own_facts(case), demo["records"])
    assert_hypothesis_held(case, record)


def test_the_talks_table_from_real_pods(demo, capsys):
    """Written as `make demo-all CLUSTER=host` writes it; every fact between cases holds."""
    records = demo["records"]
    if not records:
        pytest.skip("no case ran")
    paths = report.write(records, OUT, seconds=SECONDS, notes=demo["substrate"].notes, skipped=demo["skipped"],
                         substrate=demo["substrate"].name)
    ran = {record["name"] for record in records}
    results = [(fact, ok) for fact, ok in report.fact_results(records) if fact.subject in ran]
    with capsys.disabled():
        print(f"\n\nThe talk's table on real Pods ({demo['substrate'].name}, {SECONDS:g} s of load per case):\n")
        print(report.table(records) + "\n")
        for record in (r for r in records if r.get("kind") == "autoscale"):
            print(f"  {record['name']}: {runner.summary_line(record)}\n")
        for fact, ok in results:
            print(f"  {report.mark(ok)}: {fact.subject}: {fact.says} ({report.measured(fact, records)})")
        for record in (r for r in records if r.get("slo")):
            checks = "; ".join(f"{phase} " + ", ".join(f"{e['check']} {e['value']}" for e in entries)
                               for phase, entries in record["slo"]["phases"].items())
            print(f"  steady state of {record['name']} (Prometheus): {record['slo']['verdict']}: {checks}; "
                  f"time to recover {record['slo']['time_to_recover_s']} s, "
                  f"error budget spent {record['slo']['error_budget_spent']}")
        print("\n  seconds per case (install, load, teardown): "
              + ", ".join(f"{name} {took:g}" for name, took in demo["seconds"].items()))
        print(f"  results: {paths['results']}\n")
    assert paths["results"].exists()
    assert_facts([fact for fact, _ in results], records)
