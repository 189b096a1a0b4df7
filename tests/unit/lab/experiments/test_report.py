"""The demo's report: the table, the case table's facts checked against records, the SVG plot, the
files, the substrate named."""

import json
import xml.etree.ElementTree as ET

from lab.experiments import report


def record(name, **fields):
    base = {"name": name, "substrate": "lab", "store": "redis", "replicas": 2, "retries": False, "chaos": False,
            "kills": 0, "responses_by_replica": {"a": 50, "b": 50}, "requests": 500,
            "users_created": 100, "users_completed": 100, "users_failed": 0, "failed_requests": 0,
            "color_changes": 0, "p95_ms": 12.0, "seconds": 20, "series": [], "kill_times_s": []}
    return {**base, **fields}


def talk_records():
    return [
        record("memory-2", store="memory", color_changes=57),
        record("redis-2"),
        record("hazelcast-2", store="hazelcast"),
        record("chaos-redis-1", replicas=1, chaos=True, chaos_interval_s=15, failed_requests=40,
               users_completed=60, users_failed=40, users_failed_by_type={"http 503": 40}),
        record("chaos-redis-2", chaos=True, chaos_interval_s=15, failed_requests=3, users_completed=97),
        record("chaos-redis-2-retries", retries=True, chaos=True, chaos_interval_s=15),
        scaling(),
    ]


def scaling(**fields):
    base = {"name": "autoscale", "kind": "autoscale", "store": "-", "replicas": 4, "retries": False, "chaos": False,
            "users_created": 4, "users_completed": 0, "color_changes": 0, "p95_ms": 520.0,
            "min_replicas": 1, "max_replicas": 4,
            "time_to_first_scale_up_s": 9.0, "back_to_min_after_load_s": 42.0, "scale_down_bound_s": 75.0,
            "p95_before_ms": 610.0, "p95_after_ms": 470.0, "requests": 884, "failed_requests": 0,
            "ramp": {"users": 4, "up_s": 10, "hold_s": 60, "down_s": 5},
            "events": [{"t": 8.7, "message": "New size: 3; reason: cpu above target"},
                       {"t": 114.7, "message": "New size: 1; reason: All metrics below target"}],
            "samples": [{"t": 0, "replicas": 1, "desired": 1, "cpu": {"a": 0.01}},
                        {"t": 10, "replicas": 3, "desired": 4, "cpu": {"a": 0.2, "b": 0.15}}],
            "load": [{"t": 1, "users": 4, "rps": 10.0, "p95_ms": 600.0}]}
    return {**base, **fields}


def test_the_autoscaling_facts_need_a_scale_out_and_a_return():
    records = talk_records()
    records[-1] = scaling(max_replicas=1)
    assert dict(report.key_facts(records))["the HPA scales sqrt out under load"] is False
    records[-1] = scaling(back_to_min_after_load_s=None)
    facts = dict(report.key_facts(records))
    assert facts["the HPA scales sqrt back to its minimum after the load"] is False
    assert facts["the HPA scales sqrt out under load"] is True


def test_the_autoscaling_case_gets_its_section_and_plot_not_a_table_row(tmp_path):
    paths = report.write(talk_records(), tmp_path, seconds=20)
    markdown = paths["markdown"].read_text()
    assert "## Autoscaling: sqrt and the HPA" in markdown and "replicas: 1 to 4" in markdown
    assert "| autoscale |" not in markdown and "autoscale" not in report.table(talk_records())
    svg = ET.parse(tmp_path / "autoscale.svg").getroot()
    assert sorted(e.get("id") for e in svg.iter() if (e.get("id") or "").startswith("rescale-")) == [
        "rescale-1", "rescale-2"]


def test_key_facts_hold_for_the_talks_outcome():
    ran = {r["name"] for r in talk_records()}
    facts = [(fact.says, ok) for fact, ok in report.fact_results(talk_records()) if set(fact.cases) <= ran]
    assert len(facts) >= 9 and all(ok is True for _, ok in facts), facts


def test_derived_metrics_are_the_failed_ratio_and_the_replicas_that_answered():
    assert report.derived(record("x", requests=200, failed_requests=3)) | {} == {
        **record("x", requests=200, failed_requests=3), "failed_ratio": 0.015, "replicas_answered": 2}
    assert "failed_ratio" not in report.derived({"name": "x", "requests": 0})


def test_a_fact_reports_the_numbers_it_compared():
    fact = next(f for f in report.cases.table().facts() if f.subject == "chaos-redis-2")
    assert report.measured(fact, talk_records()) == "failed_requests 3 < 40"
    assert report.measured(fact, [r for r in talk_records() if r["name"] != "chaos-redis-1"]) == ""


def test_key_facts_catch_a_lost_session_and_a_failed_request_under_retries():
    records = talk_records()
    records[-1] = record("chaos-redis-2-retries", retries=True, chaos=True, failed_requests=1, color_changes=2)
    records[1] = record("redis-2", color_changes=1)
    facts = dict(report.key_facts(records))
    assert facts["Redis sessions with 2 replicas keep every color"] is False
    assert [ok for text, ok in facts.items() if "retries and Redis" in text] == [False, False]


def test_key_facts_say_not_run_when_a_scenario_is_missing():
    facts = dict(report.key_facts([r for r in talk_records() if r["store"] != "hazelcast"]))
    assert facts["Hazelcast sessions with 2 replicas keep every color"] is None


def test_table_has_a_row_per_record_with_the_talks_columns():
    text = report.table(talk_records())
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["case", "substrate", "store"]
    assert "color changes" in lines[0] and "p95 ms" in lines[0]
    assert len(lines) == 2 + len(report.sessions(talk_records()))
    chaos_row = next(line for line in lines if line.startswith("chaos-redis-1 "))
    assert "every 15s" in chaos_row and "40 (http 503: 40)" in chaos_row


def test_each_case_plot_is_well_formed_and_marks_each_kill(tmp_path):
    series = [{"t": t, "requests": 50.0, "failures": 5.0 if t == 7 else 0.0} for t in range(1, 20)]
    records = [record("chaos-redis-1", chaos=True, series=series, kill_times_s=[6.5, 13.2])]
    paths = report.write(records, tmp_path, seconds=20)
    root = ET.parse(paths["svgs"]["chaos-redis-1"]).getroot()
    assert sorted(e.get("id") for e in root.iter() if (e.get("id") or "").startswith("kill-")) == ["kill-1", "kill-2"]


def judged_record(name: str, verdict: str, ok: bool) -> dict:
    check = {"check": "availability", "promql": 'sum(increase(x{status=~"5.."}[10s]))', "value": 0.9 if not ok else 1.0,
             "bound": 0.99, "ok": ok, "reason": ""}
    return record(name, slo={"verdict": verdict, "phases": {"baseline": [dict(check, ok=True, value=1.0)],
                                                             "recovery": [check]},
                             "time_to_recover_s": 3.0, "error_budget_spent": 0.5, "notes": [], "disagreements": []})


def test_a_broken_hypothesis_is_named_with_its_phase_and_query():
    verdicts = report.slo_verdicts([judged_record("redis-2", "broken", False), judged_record("memory-2", "held", True)])
    assert [(name, verdict) for name, verdict, _ in verdicts] == [("redis-2", "broken"), ("memory-2", "held")]
    (miss,) = verdicts[0][2]
    assert miss.startswith("recovery: availability 0.9 (bound 0.99)") and 'status=~"5.."' in miss
    assert verdicts[1][2] == []


def test_an_unjudged_hypothesis_says_why():
    unknown = record("redis-2", slo={"verdict": "unknown", "phases": {}, "notes": ["no Prometheus: not found"]})
    assert report.slo_verdicts([unknown]) == [("redis-2", "unknown", ["no Prometheus: not found"])]


def test_the_report_shows_each_phase_check_with_its_promql(tmp_path):
    paths = report.write([judged_record("redis-2", "broken", False)], tmp_path, seconds=20)
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert "### redis-2: verdict **broken**; time to recover 3 s; error budget spent 50 %" in markdown
    assert "| recovery | availability | 0.9 | 0.99 | NO |" in markdown
    assert 'status=~"5.."' in markdown and "status=~&quot;5..&quot;" in page
    assert (tmp_path / "redis-2-slo.svg").exists() and "redis-2-slo.svg" in markdown


def test_write_produces_results_json_reports_and_plots(tmp_path):
    records = talk_records()
    paths = report.write(records, tmp_path, seconds=20, notes=["a note"],
                         skipped=[{"name": "hazelcast-2", "store": "hazelcast", "skipped": "java not found"}])
    saved = json.loads(paths["results"].read_text())
    assert [r["name"] for r in saved] == [r["name"] for r in records]
    for key in ("name", "store", "replicas", "retries", "chaos", "users_created", "users_completed",
                "failed_requests", "color_changes", "p95_ms"):
        assert all(key in r for r in saved), key
    markdown = paths["markdown"].read_text()
    assert "| case | substrate |" in markdown and "java not found" in markdown
    assert markdown.startswith("# The talk's experiments, measured on lab\n")
    assert "| chaos-redis-1 | lab |" in markdown
    assert "![chaos-redis-1](chaos-redis-1.svg)" in markdown
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == sorted(f"{r['name']}.svg" for r in records)
    assert "<img src='chaos-redis-1.svg'" in paths["html"].read_text()


def test_the_report_names_the_substrate_and_lists_only_the_chosen_cases_facts(tmp_path):
    records = [dict(r, substrate="cluster:kind-x") for r in talk_records()[:2]]
    paths = report.write(records, tmp_path, seconds=20, substrate="cluster:kind-x")
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert "measured on cluster:kind-x" in markdown and "measured on cluster:kind-x</h1>" in page
    facts = markdown.split("## Key facts", 1)[1].split("##", 1)[0]
    assert "memory-2: in-memory sessions with 2 replicas lose users' colors: **yes** (color_changes 57 > 0)" in facts
    assert "chaos-redis-1" not in facts  # not chosen in this run


def test_the_report_links_the_traces_of_retried_requests_or_says_why_there_are_none(tmp_path):
    link = {"trace_id": "abc123", "url": "http://127.0.0.1:9411/zipkin/traces/abc123",
            "why": "retried: 2 attempts, 1 failed"}
    records = [record("chaos-redis-2-retries", traces=[link]),
               record("redis-2", traces=[], traces_error="Zipkin unreachable at http://127.0.0.1:1")]
    paths = report.write(records, tmp_path, seconds=20)
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert ("- chaos-redis-2-retries: retried: 2 attempts, 1 failed "
            "[abc123](http://127.0.0.1:9411/zipkin/traces/abc123)") in markdown
    assert "- redis-2: no traces: Zipkin unreachable at http://127.0.0.1:1" in markdown
    assert "<a href='http://127.0.0.1:9411/zipkin/traces/abc123'>abc123</a>" in page
