"""The one runner on a substrate of this test's own (plain data, no process): the substrate's
check comes first and bad input exits 2 with nothing written; each case's record gets the
derived metrics; skipped and failed cases are reported; the table's facts decide the exit code;
the commands a substrate echoes are printed."""

import json
from pathlib import Path

import pytest

from lab.experiments import cases, runner
from lab.experiments.substrates import CaseInputError, CaseSkipped


def measured(name: str, **fields) -> dict:
    base = {"name": name, "kind": "sessions", "store": "redis", "replicas": 2, "retries": False, "chaos": False,
            "users_created": 100, "users_completed": 100, "users_failed": 0, "requests": 500, "failed_requests": 0,
            "color_changes": 0, "p95_ms": 12.0, "kills": 0, "kill_times_s": [], "series": [], "seconds": 10,
            "responses_by_replica": {"a": 250, "b": 250}, "phases": {"baseline": [0.0, 1.0], "recovery": [1.0, 3.0]}}
    return {**base, **fields}


class Scripted:
    """A substrate that returns (or raises) what the test gave it for each case."""

    name = "test:here"

    def __init__(self, outcomes: dict, refuse: str | None = None):
        self.outcomes, self.refuse = outcomes, refuse
        self.calls: list[str] = []
        self.notes = ["a note about the load"]

    def check(self, chosen):
        self.calls.append("check " + ",".join(c.name for c in chosen))
        if self.refuse:
            raise CaseInputError(self.refuse)

    def run(self, case, seconds, workdir, echo):
        self.calls.append(f"run {case.name} {seconds:g} {workdir.name}")
        echo(f"kubectl get pods -n rl-{case.name}")
        outcome = self.outcomes[case.name]
        if isinstance(outcome, Exception):
            raise outcome
        return {**outcome, "substrate": self.name}

    def close(self):
        self.calls.append("close")


def chosen(text: str):
    return cases.table().select(text)


def test_bad_input_found_by_the_substrate_exits_2_before_anything_is_written(tmp_path, capsys):
    substrate = Scripted({}, refuse="kube context 'nope' not found: run `make cluster-up CLUSTER=kind`")
    out = tmp_path / "out"
    assert runner.run(chosen("redis-2"), substrate, 10, out) == 2
    err = capsys.readouterr().err
    assert err == "lab demo: kube context 'nope' not found: run `make cluster-up CLUSTER=kind`\n"
    assert substrate.calls == ["check redis-2", "close"] and not out.exists()


def test_a_run_writes_results_with_substrate_phases_and_derived_metrics(tmp_path, capsys):
    substrate = Scripted({"memory-2": measured("memory-2", store="memory", color_changes=30),
                          "redis-2": measured("redis-2")})
    assert runner.run(chosen("scale"), substrate, 10, tmp_path) == 0
    assert substrate.calls == ["check memory-2,redis-2", "run memory-2 10 memory-2", "run redis-2 10 redis-2", "close"]
    records = json.loads((tmp_path / "results.json").read_text())
    assert [r["name"] for r in records] == ["memory-2", "redis-2"]
    for record in records:
        assert record["substrate"] == "test:here" and record["phases"]["baseline"] == [0.0, 1.0]
        assert record["failed_ratio"] == 0 and record["replicas_answered"] == 2
    out = capsys.readouterr().out
    assert "lab demo on test:here: 2 case(s)" in out and "  a note about the load" in out
    assert "    $ kubectl get pods -n rl-memory-2" in out
    assert "  yes: memory-2: in-memory sessions with 2 replicas lose users' colors (color_changes 30 > 0)" in out
    assert "NO:" not in out and "chaos-redis-1" not in out  # only the chosen cases' facts
    assert "measured on test:here" in (tmp_path / "report.md").read_text()


def test_a_fact_that_does_not_hold_fails_the_run_and_says_so(tmp_path, capsys):
    substrate = Scripted({"redis-2": measured("redis-2", color_changes=2)})
    assert runner.run(chosen("redis-2"), substrate, 10, tmp_path) == 1
    captured = capsys.readouterr()
    assert "  NO: redis-2: Redis sessions with 2 replicas keep every color (color_changes 2 == 0)" in captured.out
    assert "1 fact(s) did not hold on test:here" in captured.err


def test_a_failed_case_is_reported_and_the_others_still_run(tmp_path, capsys):
    substrate = Scripted({"chaos-redis-1": RuntimeError("helm install failed: boom"),
                          "chaos-redis-2": measured("chaos-redis-2", chaos=True, failed_requests=3)})
    assert runner.run(chosen("chaos-redis-1,chaos-redis-2"), substrate, 10, tmp_path) == 1
    captured = capsys.readouterr()
    assert "[1/2] chaos-redis-1: FAILED: helm install failed: boom" in captured.err
    assert "1 case(s) failed: chaos-redis-1" in captured.err
    assert "not run: chaos-redis-2: under chaos, 2 replicas fail fewer requests than 1" in captured.out
    assert [r["name"] for r in json.loads((tmp_path / "results.json").read_text())] == ["chaos-redis-2"]
    assert "failed: helm install failed: boom" in (tmp_path / "report.md").read_text()


def test_a_skipped_case_is_no_failure(tmp_path, capsys):
    substrate = Scripted({"hazelcast-2": CaseSkipped("Hazelcast member jar not found: run `make hazelcast`")})
    assert runner.run(chosen("hazelcast-2"), substrate, 10, tmp_path) == 0
    out = capsys.readouterr().out
    assert "[1/1] hazelcast-2: skipped (Hazelcast member jar not found: run `make hazelcast`)" in out
    assert json.loads((tmp_path / "results.json").read_text()) == []


def test_what_an_earlier_run_left_is_cleared(tmp_path):
    (tmp_path / "runs" / "old").mkdir(parents=True)
    (tmp_path / "chaos-redis-1.svg").write_text("<svg/>")
    (tmp_path / "unrelated.txt").write_text("kept")
    assert runner.run(chosen("redis-2"), Scripted({"redis-2": measured("redis-2")}), 10, tmp_path) == 0
    assert not (tmp_path / "runs" / "old").exists() and not (tmp_path / "chaos-redis-1.svg").exists()
    assert (tmp_path / "unrelated.txt").read_text() == "kept" and (tmp_path / "redis-2.svg").exists()


def test_the_substrate_is_closed_when_a_case_raises_something_unexpected(tmp_path):
    substrate = Scripted({"redis-2": KeyError("a bug")})
    with pytest.raises(KeyError):
        runner.run(chosen("redis-2"), substrate, 10, Path(tmp_path))
    assert substrate.calls[-1] == "close"


def test_a_broken_hypothesis_sets_the_exit_code_and_names_the_phase_and_query(tmp_path, capsys):
    query = 'sum(increase(webgatos_sessions_lost_total{case="redis-2"}[10s]))'
    slo = {"verdict": "broken", "time_to_recover_s": None, "error_budget_spent": 0.0, "notes": [],
           "phases": {"recovery": [{"check": "color_changes", "promql": query, "value": 4.0, "bound": 0.0,
                                    "ok": False, "reason": ""}]}}
    assert runner.run(chosen("redis-2"), Scripted({"redis-2": measured("redis-2", slo=slo)}), 10, tmp_path) == 1
    captured = capsys.readouterr()
    assert "steady state of redis-2: broken" in captured.out
    assert f"recovery: color_changes 4 (bound 0) [{query}]" in captured.out
    assert "1 steady-state hypothesis(es) not held on test:here: redis-2 (broken)" in captured.err


def test_a_hypothesis_prometheus_could_not_judge_is_not_a_pass(tmp_path, capsys):
    slo = {"verdict": "unknown", "phases": {}, "notes": ["no Prometheus: run `make prometheus`"]}
    assert runner.run(chosen("redis-2"), Scripted({"redis-2": measured("redis-2", slo=slo)}), 10, tmp_path) == 1
    assert "no Prometheus: run `make prometheus`" in capsys.readouterr().out


def test_a_held_hypothesis_keeps_exit_0(tmp_path):
    slo = {"verdict": "held", "phases": {"baseline": []}, "notes": []}
    assert runner.run(chosen("redis-2"), Scripted({"redis-2": measured("redis-2", slo=slo)}), 10, tmp_path) == 0
