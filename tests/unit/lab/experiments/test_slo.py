"""The SLO judge's logic over a stand-in for Prometheus' answers: which query each check sends,
bounds and their directions, verdicts (held, broken, unknown: never a silent pass), time to
recover, error budget, bad hypotheses, and where Locust and Prometheus disagree. The judge on a
real Prometheus: tests/integration/test_prometheus_slo.py."""

import re

import pytest

from lab.experiments import slo
from lab.observe.promql import PromQLError

PHASES = {"baseline": [1000.0, 1010.0], "fault": [1010.0, 1020.0], "recovery": [1020.0, 1030.0]}
HYPOTHESIS = {"availability": 0.99, "p95_ms": 500, "color_changes": 0, "min_replicas": 2,
              "phases": ["baseline", "recovery"]}


class Answers:
    """Answers by the first matching fragment of the query, per phase end; a missing answer is
    "no data", as Prometheus' empty result is."""

    def __init__(self, values: dict, series=None, last_scrape: float = 2000.0):
        self.values, self.series_points, self.scrape = values, series, last_scrape
        self.asked: list[tuple[str, float | None]] = []

    def value(self, expr: str, at: float | None = None) -> float:
        self.asked.append((expr, at))
        if expr == "max(timestamp(up))":
            return self.scrape
        for fragment, answer in self.values.items():
            if fragment in expr:
                found = answer(at) if callable(answer) else answer
                if found is None:
                    break
                return found
        raise PromQLError("no data", expr)

    def last_scrape(self) -> float:
        return self.value("max(timestamp(up))")

    def series(self, expr, start, end, step):
        if self.series_points is None:
            raise PromQLError("no data", expr)
        return self.series_points


HEALTHY = {"1 - ((sum(increase(": 1.0, "histogram_quantile": 120.0, "webgatos_sessions_lost_total": 0.0,
           "kube_deployment_status_replicas_ready": 2.0, "or vector(0)": 0.0, "sum(increase(http_requests_total": 900.0}


def judged(answers: Answers, hypothesis=HYPOTHESIS, phases=PHASES, **kwargs) -> dict:
    return slo.judge(answers, hypothesis, phases, {"case": "c"}, scrape_wait=0.2, **kwargs)


def test_every_bound_holds_over_every_phase_it_names():
    result = judged(Answers(HEALTHY, series=[(1010.0, 0.0), (1030.0, 0.0)]))
    assert result["verdict"] == "held"
    assert list(result["phases"]) == ["baseline", "recovery"]  # "fault" is not named by the hypothesis
    assert [entry["check"] for entry in result["phases"]["recovery"]] == list(slo.CHECKS)
    assert all(entry["ok"] and entry["reason"] == "" for entry in result["phases"]["recovery"])
    assert result["time_to_recover_s"] == 0.0 and result["error_budget_spent"] == 0.0


def test_each_check_is_one_instant_query_at_the_phase_end_over_its_length():
    answers = Answers(HEALTHY, series=[])
    result = judged(answers)
    [availability] = [e for e in result["phases"]["recovery"] if e["check"] == "availability"]
    assert availability["promql"] == ('1 - ((sum(increase(http_requests_total{endpoint=~"/|/api/session",'
                                      'status=~"5..",case="c"}[10s])) or vector(0)) / sum(increase('
                                      'http_requests_total{endpoint=~"/|/api/session",case="c"}[10s])))')
    assert (availability["promql"], 1030.0) in answers.asked
    by_check = {e["check"]: e["promql"] for e in result["phases"]["baseline"]}
    assert by_check["p95_ms"].startswith("histogram_quantile(0.95, sum by (le) (increase(")
    assert by_check["p95_ms"].endswith("[10s]))) * 1000")
    assert by_check["min_replicas"] == 'min_over_time(sum(kube_deployment_status_replicas_ready{case="c"})[10s:1s])'


def test_a_value_past_its_bound_breaks_the_hypothesis_naming_phase_check_and_query():
    values = {**HEALTHY, "1 - ((sum(increase(": lambda at: 0.5 if at == 1030.0 else 1.0}
    result = judged(Answers(values, series=[(1010.0, 3.0), (1030.0, 3.0)]))
    assert result["verdict"] == "broken"
    [broken] = [e for e in result["phases"]["recovery"] if not e["ok"]]
    assert broken["check"] == "availability" and broken["value"] == 0.5 and broken["bound"] == 0.99
    assert broken["reason"] == "availability 0.5 is not >= 0.99"
    assert "increase(" in broken["promql"]
    assert all(e["ok"] for e in result["phases"]["baseline"])


@pytest.mark.parametrize(("check", "value", "reason"), [
    ("histogram_quantile", 900.0, "p95_ms 900 is not <= 500"),
    ("webgatos_sessions_lost_total", 3.0, "color_changes 3 is not <= 0"),
    ("kube_deployment_status_replicas_ready", 1.0, "min_replicas 1 is not >= 2"),
])
def test_each_bound_has_its_direction(check, value, reason):
    result = judged(Answers({**HEALTHY, check: value}, series=[]))
    assert result["verdict"] == "broken"
    assert reason in [e["reason"] for e in result["phases"]["baseline"]]


def test_no_data_is_unknown_with_a_reason_never_a_pass():
    values = {key: value for key, value in HEALTHY.items() if key != "webgatos_sessions_lost_total"}
    result = judged(Answers(values, series=[]))
    assert result["verdict"] == "unknown"
    [missing] = [e for e in result["phases"]["baseline"] if not e["ok"]]
    assert missing["check"] == "color_changes" and missing["value"] is None
    assert missing["reason"].startswith("no answer: no data")


def test_broken_wins_over_unknown():
    values = {**HEALTHY, "histogram_quantile": 900.0}
    del values["webgatos_sessions_lost_total"]
    assert judged(Answers(values, series=[]))["verdict"] == "broken"


def test_data_that_stops_before_the_run_ends_is_said():
    result = judged(Answers(HEALTHY, series=[], last_scrape=1015.0))
    assert all("judged on partial data: Prometheus has not scraped past 1030" in e["reason"]
               for e in result["phases"]["recovery"])


def test_time_to_recover_is_the_last_failing_second_after_the_first_kill():
    points = [(1010.0 + t, 2.0 if t <= 6 else 0.0) for t in range(21)]
    assert judged(Answers(HEALTHY, series=points))["time_to_recover_s"] == 6.0


def test_never_recovering_is_none_with_a_note():
    result = judged(Answers(HEALTHY, series=[(1010.0, 1.0), (1030.0, 1.0)]))
    assert result["time_to_recover_s"] is None
    assert any(note.startswith("time to recover: 5xx answers until the run's end") for note in result["notes"])


def test_without_a_fault_phase_there_is_no_time_to_recover():
    phases = {"baseline": [1000.0, 1010.0], "recovery": [1010.0, 1030.0]}
    assert judged(Answers(HEALTHY), phases=phases)["time_to_recover_s"] is None


def test_error_budget_is_failed_over_allowed():
    values = {**HEALTHY, "or vector(0)": 4.5, "sum(increase(http_requests_total": 900.0}
    # allowed = (1 - 0.99) * 900 = 9 failures; 4.5 failed
    assert judged(Answers(values, series=[]))["error_budget_spent"] == 0.5


def test_no_budget_at_all_with_failures_is_none_with_a_note():
    values = {**HEALTHY, "or vector(0)": 2.0}
    result = judged(Answers(values, series=[]), hypothesis={**HYPOTHESIS, "availability": 1})
    assert result["error_budget_spent"] is None
    assert any("none allowed" in note for note in result["notes"])


def test_gateway_signals_read_envoys_listener_by_a_name_regex():
    signals = slo.gateway_signals(8080)
    query = slo.availability_query(signals, {"case": "c"}, 10)
    assert '{__name__=~"envoy_http_.*_8080__downstream_rq_xx",envoy_response_code_class="5",case="c"}' in query
    assert slo.p95_query(signals, {}, 5).endswith("[5s]))) * 1")


def test_label_values_are_escaped():
    assert slo.Selector("up").render({"case": 'a"b\\'}) == 'up{case="a\\"b\\\\"}'


@pytest.mark.parametrize(("hypothesis", "phases", "message"), [
    ({"availability": 1.5}, PHASES, "hypothesis availability=1.5: use a ratio from 0 to 1"),
    ({"p95_ms": "fast"}, PHASES, "hypothesis p95_ms='fast': use a number >= 0"),
    ({"color_changes": True}, PHASES, "hypothesis color_changes=True"),
    ({"latency": 1}, PHASES, "unknown hypothesis key(s) latency"),
    ({"phases": "baseline"}, PHASES, "hypothesis phases='baseline': a list of phase names"),
    ({"availability": 0.9}, {}, "no phases to judge"),
    ({"availability": 0.9}, {"baseline": [10, 5]}, "phase 'baseline'=[10, 5]: use [start, end]"),
    ({"availability": 0.9}, {"baseline": [10, "later"]}, "phase 'baseline'=[10, 'later']: use [start, end]"),
])
def test_a_bad_hypothesis_or_phases_names_the_field(hypothesis, phases, message):
    with pytest.raises(slo.HypothesisError, match=re.escape(message)):
        slo.judge(Answers(HEALTHY), hypothesis, phases)


def test_an_empty_phase_is_noted_not_judged():
    phases = {"baseline": [1000.0, 1000.0], "fault": [1000.0, 1020.0], "recovery": [1020.0, 1030.0]}
    result = judged(Answers(HEALTHY, series=[]), phases=phases)
    assert list(result["phases"]) == ["recovery"] and result["verdict"] == "held"
    assert "phase baseline lasted 0.0s: too short to judge" in result["notes"]


def test_nothing_to_judge_is_unknown():
    phases = {"baseline": [1000.0, 1000.0]}
    assert judged(Answers(HEALTHY, series=[]), phases=phases)["verdict"] == "unknown"


def test_every_case_of_the_table_has_a_hypothesis_the_judge_takes():
    from lab.experiments import cases
    for case in cases.load():
        hypothesis = slo.hypothesis_of(case)
        if hypothesis:
            bounds, applies = slo.validate(hypothesis, PHASES)
            assert bounds and set(applies) <= {"baseline", "fault", "recovery"}, case.name


def test_disagreements_between_locust_and_prometheus():
    result = {"totals": {"requests": 100.0, "failed": 0.0, "color_changes": 4.0}}
    assert slo.disagreements({"failed_requests": 3, "color_changes": 5}, result) == [
        "failed requests: Locust counted 3, Prometheus 0"]
    assert slo.disagreements({"failed_requests": 0, "color_changes": 0}, result) == [
        "color changes: Locust counted 0, Prometheus 4"]
    assert slo.disagreements({"failed_requests": 2, "color_changes": 0},
                             {"totals": {"failed": None, "color_changes": 0.0}}) == [
        "failed requests: Locust counted 2, Prometheus gave no answer"]


def test_the_plot_series_are_the_entry_points_rates_and_the_ready_replicas_of_the_case():
    points = [(1000.0, 5.0), (1001.0, 6.0)]
    answers = Answers({}, series=points)
    series, missing = slo.plot_series(answers, slo.gateway_signals(8080), {"case": "redis-2"}, 1000.0, 1030.0)
    assert series == {"requests (requests/s)": points, "5xx answers (requests/s)": points,
                      "ready replicas (replicas)": points}
    assert missing == []


def test_a_plot_series_without_data_is_named_not_drawn_empty():
    series, missing = slo.plot_series(Answers({}), slo.APP_SIGNALS, {"case": "redis-2"}, 1000.0, 1030.0)
    assert series == {}
    assert len(missing) == 3 and missing[0].startswith("plot requests (requests/s): no data")
    assert 'case="redis-2"' in missing[0]


def test_a_workload_without_sessions_is_judged_without_asking_for_them():
    answers = Answers(HEALTHY, series=[(1010.0, 0.0), (1030.0, 0.0)])
    signals = slo.gateway_signals(8080, sessions=False)
    result = slo.judged_or_unknown(answers, "", {"availability": 0.99, "min_replicas": 1}, PHASES, {"case": "c"},
                                   signals)
    assert result["verdict"] == "held"
    assert "color_changes" not in result["totals"]
    assert not [expr for expr, _ in answers.asked if "sessions_lost" in expr]
    # sqrt's record says 0 color changes; Prometheus counted none, and that is no disagreement
    assert slo.disagreements({"failed_requests": 0, "color_changes": 0}, result) == []


def test_what_cannot_be_judged_says_why():
    hypothesis = {"availability": 0.99, "color_changes": 0}
    no_prometheus = slo.judged_or_unknown(None, "port 9090 is busy", hypothesis, PHASES, {}, slo.APP_SIGNALS)
    assert (no_prometheus["verdict"], no_prometheus["notes"]) == ("unknown", ["no Prometheus: port 9090 is busy"])
    no_sessions = slo.judged_or_unknown(Answers(HEALTHY), "", hypothesis, PHASES, {},
                                        slo.gateway_signals(sessions=False))
    assert no_sessions["verdict"] == "unknown"
    assert "color_changes: this workload keeps no sessions" in no_sessions["notes"][0]
