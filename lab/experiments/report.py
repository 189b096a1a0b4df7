"""The demo's outputs: results.json, the talk-style table, the facts of the case table
(cases.toml) checked against the records, each case's steady-state hypothesis as Prometheus judged
it per phase (slo.py, with the PromQL behind each check), and a Markdown + HTML report naming the
substrate that ran, with matplotlib figures (plots.py): requests and failures over time with kills
and phases, each case's checks per phase, and the autoscaling case's replicas."""

import html
import json
from collections.abc import Sequence
from pathlib import Path

from lab.experiments import cases
from lab.experiments.cases import Fact

# Columns of the table, as in the talk: (header, record key).
COLUMNS = [
    ("case", "name"), ("substrate", "substrate"), ("store", "store"), ("replicas", "replicas"), ("retries", "retries"),
    ("chaos", "chaos"), ("kills", "kills"), ("users created", "users_created"),
    ("completed", "users_completed"), ("failed users (by error)", "users_failed"),
    ("failed requests", "failed_requests"), ("color changes", "color_changes"), ("p95 ms", "p95_ms"),
]


def cell(record: dict, key: str) -> str:
    value = record.get(key)
    if key == "users_failed":
        by_type = record.get("users_failed_by_type") or {}
        details = ", ".join(f"{kind}: {count}" for kind, count in sorted(by_type.items(), key=lambda kv: -kv[1]))
        return f"{value or 0}" + (f" ({details})" if details else "")
    if key == "chaos" and value:
        return f"every {record.get('chaos_interval_s', 0):g}s"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.0f}"
    return "-" if value is None else str(value)


def sessions(records: Sequence[dict]) -> list[dict]:
    """The session scenarios (the talk's table); the autoscaling case has its own section."""
    return [r for r in records if r.get("kind", "sessions") == "sessions"]


def autoscale_lines(record: dict) -> list[str]:
    return [f"- replicas: {record['min_replicas']} to {record['max_replicas']} (HPA of charts/sqrt, "
            f"{record['ramp']['users']} Locust users: ramp {record['ramp']['up_s']:g} s, hold "
            f"{record['ramp']['hold_s']:g} s, down {record['ramp']['down_s']:g} s)",
            f"- first scale-up {record['time_to_first_scale_up_s']} s after the load started; back to the minimum "
            f"{record['back_to_min_after_load_s']} s after it stopped (bound from the chart's behaviour: "
            f"{record['scale_down_bound_s']:g} s)",
            f"- p95: {record['p95_before_ms']} ms while one replica carried the load, {record['p95_after_ms']} ms "
            f"scaled out; {record['requests']} requests, {record['failed_requests']} failed",
            *[f"- at {e['t']:g} s: {e['message']}" for e in record["events"]]]


def table(records: Sequence[dict]) -> str:
    """A plain-text table for the terminal."""
    records = sessions(records)
    rows = [[header for header, _ in COLUMNS]] + [[cell(r, key) for _, key in COLUMNS] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def markdown_table(records: Sequence[dict]) -> str:
    records = sessions(records)
    lines = ["| " + " | ".join(header for header, _ in COLUMNS) + " |",
             "|" + "|".join("---" for _ in COLUMNS) + "|"]
    lines += ["| " + " | ".join(cell(r, key) for _, key in COLUMNS) + " |" for r in records]
    return "\n".join(lines)


def derived(record: dict) -> dict:
    """The record with the metrics facts may read that no substrate measures directly: the ratio
    of failed requests, and how many replicas answered (Locust saw their hostnames)."""
    extra = {}
    if record.get("requests"):
        extra["failed_ratio"] = round(record.get("failed_requests", 0) / record["requests"], 5)
    if "responses_by_replica" in record:
        extra["replicas_answered"] = len(record["responses_by_replica"])
    return {**record, **extra}


def fact_results(records: Sequence[dict], facts: Sequence[Fact] | None = None) -> list[tuple[Fact, bool | None]]:
    """Each fact of the case table, checked against the measured records (None: a case it needs
    did not run)."""
    by_name = {r["name"]: derived(r) for r in records}
    return [(fact, fact.holds(by_name)) for fact in (cases.table().facts() if facts is None else facts)]


def key_facts(records: Sequence[dict]) -> list[tuple[str, bool | None]]:
    """The claims the demo exists to show (the table's facts), as (text, holds)."""
    return [(fact.says, ok) for fact, ok in fact_results(records)]


def measured(fact: Fact, records: Sequence[dict]) -> str:
    """The numbers a fact compared, e.g. `failed_requests 3 < 40`; empty when it did not run."""
    operands = fact.operands({r["name"]: derived(r) for r in records})
    if operands is None:
        return ""
    left, right = operands
    return f"{fact.metric} {left}" if fact.op == cases.PRESENT else f"{fact.metric} {left} {fact.op} {right}"


def mark(ok: bool | None) -> str:
    return "not run" if ok is None else ("yes" if ok else "NO")


def title(substrate: str) -> str:
    return f"The talk's experiments, measured on {substrate}"


def trace_links(record: dict) -> list[tuple[str, str, str]]:
    """(why, url, trace id) of each linked trace, or the one reason there are none."""
    if record.get("traces_error"):
        return [(f"no traces: {record['traces_error']}", "", "")]
    return [(link["why"], link["url"], link["trace_id"]) for link in record.get("traces", [])]


def trace_lines(record: dict) -> list[str]:
    return [f"{why} [{trace_id}]({url})" if url else why for why, url, trace_id in trace_links(record)]


def slo_verdicts(records: Sequence[dict]) -> list[tuple[str, str, list[str]]]:
    """(case, verdict, [one line per check that did not hold or had no answer]) for each judged
    record: what the runner prints and what sets its exit code."""
    found = []
    for record in records:
        judged = record.get("slo")
        if not judged:
            continue
        misses = [f"{phase}: {entry['check']} {value_text(entry)} (bound {entry['bound']:g})"
                  + (f": {entry['reason']}" if entry.get("reason") else "") + f" [{entry['promql']}]"
                  for phase, checks in judged.get("phases", {}).items() for entry in checks if not entry["ok"]]
        if judged.get("verdict") != "held" and not misses:
            misses = list(judged.get("notes") or ["nothing could be judged"])
        found.append((record["name"], judged.get("verdict", "unknown"), misses))
    return found


def value_text(entry: dict) -> str:
    value = entry.get("value")
    return "no value" if value is None else f"{value:.4g}"


def reason(entry: dict) -> str:
    return f" ({entry['reason']})" if entry.get("reason") else ""


def slo_summary(judged: dict) -> str:
    recover, budget = judged.get("time_to_recover_s"), judged.get("error_budget_spent")
    return (f"verdict **{judged.get('verdict', 'unknown')}**"
            + ("" if recover is None else f"; time to recover {recover:g} s")
            + ("" if budget is None else f"; error budget spent {100 * budget:.0f} %"))


def slo_markdown(record: dict, chart: Path | None) -> list[str]:
    judged = record["slo"]
    lines = [f"### {record['name']}: {slo_summary(judged)}", "",
             "| phase | check | value | bound | holds | PromQL |", "|---|---|---|---|---|---|"]
    for phase, checks in judged.get("phases", {}).items():
        lines += [f"| {phase} | {e['check']} | {value_text(e)} | {e['bound']:g} | {mark(e['ok'])}{reason(e)} "
                  f"| `{e['promql'].replace('|', chr(92) + '|')}` |" for e in checks]
    lines += [""] + [f"- {note}" for note in judged.get("notes", [])]
    lines += [f"- Locust and Prometheus disagree: {line}" for line in judged.get("disagreements", [])]
    if chart is not None:
        lines += ["", f"![{record['name']}: checks per phase]({chart.name})"]
    return [*lines, ""]


def slo_html(record: dict, chart: Path | None) -> list[str]:
    judged = record["slo"]
    page = [f"<h3>{html.escape(record['name'])}: {slo_summary(judged).replace('**', '')}</h3>",
            "<table><tr><th>phase</th><th>check</th><th>value</th><th>bound</th><th>holds</th><th>PromQL</th></tr>"]
    for phase, checks in judged.get("phases", {}).items():
        page += [f"<tr><td>{html.escape(phase)}</td><td>{html.escape(e['check'])}</td><td>{value_text(e)}</td>"
                 f"<td>{e['bound']:g}</td><td>{mark(e['ok'])}{html.escape(reason(e))}</td>"
                 f"<td><code>{html.escape(e['promql'])}</code></td></tr>" for e in checks]
    page.append("</table><ul>")
    page += [f"<li>{html.escape(note)}</li>" for note in judged.get("notes", [])]
    page += [f"<li>Locust and Prometheus disagree: {html.escape(line)}</li>"
             for line in judged.get("disagreements", [])]
    page.append("</ul>")
    if chart is not None:
        page.append(f"<img src='{html.escape(chart.name)}' alt='{html.escape(record['name'])}: checks per phase'>")
    return page


def write(records: Sequence[dict], out_dir: str | Path, *, seconds: float, notes: Sequence[str] = (),
          skipped: Sequence[dict] = (), substrate: str = "lab") -> dict:
    """Write results.json (the scenarios that ran), report.md, report.html and one SVG per scenario
    into `out_dir`; `skipped` records ({name, skipped: reason}) appear in the report only.
    Returns the paths written, by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    results.write_text(json.dumps(list(records), indent=2) + "\n")
    # Here, not at the top: every `python -m lab` command imports this module, and matplotlib costs
    # 0.6 s and writes a font cache under the user's home on its first import.
    from lab.experiments import plots

    svgs, slo_charts = {}, {}
    for record in sessions(records):
        svgs[record["name"]] = plots.case_figure(record, out / f"{record['name']}.svg",
                                                 record.get("prometheus_series"))
    for record in records:
        chart = plots.phase_chart(record, out / f"{record['name']}-slo.svg")
        if chart is not None:
            slo_charts[record["name"]] = chart
    scaling = next((r for r in records if r.get("kind") == "autoscale"), None)
    if scaling is not None:
        plots.autoscale_figure(scaling, out / "autoscale.svg")
    selected = {r["name"] for r in [*records, *skipped]}  # the facts of the cases this run chose
    facts = [(fact, ok, measured(fact, records)) for fact, ok in fact_results(records)
             if fact.subject in selected]
    intro = (f"Substrate: `{substrate}`. Each case ran {seconds:g} s of the talk's arrival profile "
             "(the autoscaling case: its ramp); the facts come from lab/experiments/cases.toml.")
    md = [f"# {title(substrate)}", "", intro, ""]
    md += [f"- {note}" for note in notes]
    md += ["", markdown_table(records), "", "## Key facts", ""]
    md += [f"- {fact.subject}: {fact.says}: **{mark(ok)}**" + (f" ({numbers})" if numbers else "")
           for fact, ok, numbers in facts]
    judged = [r for r in records if r.get("slo")]
    if judged:
        md += ["", "## Steady-state hypotheses, judged by Prometheus per phase", ""]
        for record in judged:
            md += slo_markdown(record, slo_charts.get(record["name"]))
    traced = [r for r in records if r.get("traces") or r.get("traces_error")]
    if traced:
        md += ["", "## Traces of failed or retried requests (Zipkin)", ""]
        for record in traced:
            md += [f"- {record['name']}: {line}" for line in trace_lines(record)]
    if skipped:
        md += ["", "## Skipped", ""] + [f"- {r['name']}: {r['skipped']}" for r in skipped]
    if scaling is not None:
        md += ["", "## Autoscaling: sqrt and the HPA", ""] + autoscale_lines(scaling)
        md += ["", "![autoscale](autoscale.svg)"]
    md += ["", "## Errors over time", ""]
    md += [f"![{name}]({path.name})\n" for name, path in svgs.items()]
    screenshots = [r for r in records if r.get("screenshot")]
    if screenshots:
        md += ["## What a user sees", ""] + [f"![{r['store']}]({r['screenshot']})\n" for r in screenshots]
    (out / "report.md").write_text("\n".join(md) + "\n")

    page = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title(substrate))}</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>",
            f"<h1>{html.escape(title(substrate))}</h1>", f"<p>{html.escape(intro)}</p>"]
    page += ["<ul>"] + [f"<li>{html.escape(note)}</li>" for note in notes] + ["</ul>"]
    page.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h, _ in COLUMNS) + "</tr>")
    for r in sessions(records):
        page.append("<tr>" + "".join(f"<td>{html.escape(cell(r, k))}</td>" for _, k in COLUMNS) + "</tr>")
    page.append("</table><h2>Key facts</h2><ul>")
    page += [f"<li>{html.escape(fact.subject)}: {html.escape(fact.says)}: <b>{mark(ok)}</b>"
             + (f" ({html.escape(numbers)})" if numbers else "") + "</li>" for fact, ok, numbers in facts]
    page.append("</ul>")
    if judged:
        page.append("<h2>Steady-state hypotheses, judged by Prometheus per phase</h2>")
        for record in judged:
            page += slo_html(record, slo_charts.get(record["name"]))
    if traced:
        page.append("<h2>Traces of failed or retried requests (Zipkin)</h2><ul>")
        for record in traced:
            page += [f"<li>{html.escape(record['name'])}: {html.escape(why)}"
                     + (f" <a href='{html.escape(url)}'>{html.escape(trace_id)}</a>" if url else "") + "</li>"
                     for why, url, trace_id in trace_links(record)]
        page.append("</ul>")
    if skipped:
        page += ["<h2>Skipped</h2><ul>"] + [f"<li>{html.escape(r['name'])}: {html.escape(r['skipped'])}</li>"
                                            for r in skipped] + ["</ul>"]
    if scaling is not None:
        page.append("<h2>Autoscaling: sqrt and the HPA</h2><ul>")
        page += [f"<li>{html.escape(line[2:])}</li>" for line in autoscale_lines(scaling)]
        page += ["</ul>", "<img src='autoscale.svg' alt='autoscale'>"]
    page.append("<h2>Errors over time</h2>")
    page += [f"<img src='{html.escape(path.name)}' alt='{html.escape(name)}'>" for name, path in svgs.items()]
    if screenshots:
        page.append("<h2>What a user sees</h2>")
        page += [f"<figure><img src='{html.escape(r['screenshot'])}' width='480'>"
                 f"<figcaption>{html.escape(r['store'])}</figcaption></figure>" for r in screenshots]
    page.append("</body></html>")
    (out / "report.html").write_text("\n".join(page) + "\n")
    return {"results": results, "markdown": out / "report.md", "html": out / "report.html", "svgs": svgs,
            "slo_charts": slo_charts}
