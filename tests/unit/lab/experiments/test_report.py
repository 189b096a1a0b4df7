"""The demo's report: the table, the key facts checked against records, the SVG plot, the files."""

import json
import xml.etree.ElementTree as ET

from lab.experiments import report


def record(name, **fields):
    base = {"name": name, "store": "redis", "replicas": 2, "retries": False, "chaos": False, "kills": 0,
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


def test_the_autoscaling_fact_needs_a_scale_out_and_a_return():
    records = talk_records()
    records[-1] = scaling(max_replicas=1)
    assert dict(report.key_facts(records))["the HPA scales sqrt out under load and back to its minimum after"] is False
    records[-1] = scaling(back_to_min_after_load_s=None)
    assert dict(report.key_facts(records))["the HPA scales sqrt out under load and back to its minimum after"] is False


def test_the_autoscaling_case_gets_its_section_and_plot_not_a_table_row(tmp_path):
    paths = report.write(talk_records(), tmp_path, seconds=20)
    markdown = paths["markdown"].read_text()
    assert "## Autoscaling: sqrt and the HPA" in markdown and "replicas: 1 to 4" in markdown
    assert "| autoscale |" not in markdown and "autoscale" not in report.table(talk_records())
    svg = ET.parse(tmp_path / "autoscale.svg").getroot()
    assert len([e for e in svg.iter("{http://www.w3.org/2000/svg}line") if e.get("class") == "rescale"]) == 2


def test_key_facts_hold_for_the_talks_outcome():
    facts = report.key_facts(talk_records())
    assert facts and all(ok is True for _, ok in facts), facts


def test_key_facts_catch_a_lost_session_and_a_failed_request_under_retries():
    records = talk_records()
    records[-1] = record("chaos-redis-2-retries", retries=True, chaos=True, failed_requests=1, color_changes=2)
    records[1] = record("redis-2", color_changes=1)
    facts = dict(report.key_facts(records))
    assert facts["Redis sessions with 2 replicas keep every color"] is False
    assert [ok for text, ok in facts.items() if "retries and Redis" in text] == [False]


def test_key_facts_say_not_run_when_a_scenario_is_missing():
    facts = dict(report.key_facts([r for r in talk_records() if r["store"] != "hazelcast"]))
    assert facts["Hazelcast sessions with 2 replicas keep every color"] is None


def test_table_has_a_row_per_record_with_the_talks_columns():
    text = report.table(talk_records())
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["scenario", "store"]
    assert "color changes" in lines[0] and "p95 ms" in lines[0]
    assert len(lines) == 2 + len(report.sessions(talk_records()))
    chaos_row = next(line for line in lines if line.startswith("chaos-redis-1 "))
    assert "every 15s" in chaos_row and "40 (http 503: 40)" in chaos_row


def test_svg_is_well_formed_and_marks_each_kill():
    series = [{"t": t, "requests": 50.0, "failures": 5.0 if t == 7 else 0.0} for t in range(1, 20)]
    svg = report.errors_svg(record("chaos-redis-1", chaos=True, series=series, kill_times_s=[6.5, 13.2]))
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    kills = [line for line in root.iter(f"{ns}line") if line.get("class") == "kill"]
    assert len(kills) == 2
    assert float(kills[0].get("x1")) < float(kills[1].get("x1"))
    assert len(list(root.iter(f"{ns}polyline"))) == 2


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
    assert "| scenario |" in markdown and "java not found" in markdown
    assert "![chaos-redis-1](chaos-redis-1.svg)" in markdown
    assert sorted(p.name for p in tmp_path.glob("*.svg")) == sorted(f"{r['name']}.svg" for r in records)
    assert "<svg" in paths["html"].read_text()
