"""The demo's report: the table, the key facts checked against records, the SVG plot, the files."""

import json
import xml.etree.ElementTree as ET

from lab import report


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
    ]


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
    assert len(lines) == 2 + len(talk_records())
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
