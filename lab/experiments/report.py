"""The demo's outputs: results.json, the talk-style table, and a Markdown + HTML report with one
errors-over-time plot per scenario (an SVG drawn here, kills marked), and the autoscaling case's
plot (autoscale.py)."""

import html
import json
from collections.abc import Sequence
from pathlib import Path

# Columns of the table, as in the talk: (header, record key).
COLUMNS = [
    ("scenario", "name"), ("store", "store"), ("replicas", "replicas"), ("retries", "retries"),
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


def key_facts(records: Sequence[dict]) -> list[tuple[str, bool | None]]:
    """The claims the demo exists to show, each checked against the measured records
    (None when the scenarios it needs did not run)."""
    by_name = {r["name"]: r for r in records}

    def fact(text, names, check):
        missing = [n for n in names if n not in by_name]
        return text, None if missing else bool(check(*(by_name[n] for n in names)))

    return [
        fact("in-memory sessions with 2 replicas lose users' colors", ["memory-2"],
             lambda r: r["color_changes"] > 0),
        fact("Redis sessions with 2 replicas keep every color", ["redis-2"], lambda r: r["color_changes"] == 0),
        fact("Hazelcast sessions with 2 replicas keep every color", ["hazelcast-2"],
             lambda r: r["color_changes"] == 0),
        fact("under chaos, 1 replica without retries fails users' requests", ["chaos-redis-1"],
             lambda r: r["failed_requests"] > 0),
        fact("under chaos, 2 replicas fail fewer requests than 1", ["chaos-redis-1", "chaos-redis-2"],
             lambda one, two: two["failed_requests"] < one["failed_requests"]),
        fact("under chaos, 2 replicas with retries and Redis: zero failed requests, zero color changes",
             ["chaos-redis-2-retries"], lambda r: r["failed_requests"] == 0 and r["color_changes"] == 0),
        fact("the HPA scales sqrt out under load and back to its minimum after", ["autoscale"],
             lambda r: (r["max_replicas"] or 0) > (r["min_replicas"] or 0)
             and r["back_to_min_after_load_s"] is not None),
    ]


def errors_svg(record: dict, width: int = 640, height: int = 180) -> str:
    """Requests and failed requests per second over the run, with a red line at each kill."""
    series = record.get("series") or []
    kills = record.get("kill_times_s") or []
    left, right, top, bottom = 44, 10, 22, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    duration = max([p["t"] for p in series] + kills + [record.get("seconds") or 1, 1])
    peak = max([p["requests"] for p in series] + [1])

    def x(t: float) -> float:
        return left + plot_w * t / duration

    def y(v: float) -> float:
        return top + plot_h * (1 - v / peak)

    def polyline(key: str, color: str) -> str:
        points = " ".join(f"{x(p['t']):.1f},{y(p[key]):.1f}" for p in series)
        return f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>'

    title = html.escape(f"{record['name']}: requests/s (grey), failed requests/s (red), kills (dashed)")
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="14">{title}</text>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="black"/>',
             f'<text x="{left - 4}" y="{top + 8}" text-anchor="end">{peak}</text>',
             f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
             f'<text x="{left + plot_w}" y="{height - 6}" text-anchor="end">{duration:.0f} s</text>',
             f'<text x="{left}" y="{height - 6}">0 s</text>']
    for t in kills:
        parts.append(f'<line class="kill" x1="{x(t):.1f}" y1="{top}" x2="{x(t):.1f}" y2="{top + plot_h}" '
                     f'stroke="#c00" stroke-dasharray="4,3"/>')
        parts.append(f'<text x="{x(t) + 2:.1f}" y="{top + 10}" fill="#c00">kill</text>')
    if series:
        parts.append(polyline("requests", "#888"))
        parts.append(polyline("failures", "#d00"))
    else:
        parts.append(f'<text x="{left + 10}" y="{top + plot_h / 2}">no time series recorded</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def write(records: Sequence[dict], out_dir: str | Path, *, seconds: float, notes: Sequence[str] = (),
          skipped: Sequence[dict] = ()) -> dict:
    """Write results.json (the scenarios that ran), report.md, report.html and one SVG per scenario
    into `out_dir`; `skipped` records ({name, skipped: reason}) appear in the report only.
    Returns the paths written, by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.json"
    results.write_text(json.dumps(list(records), indent=2) + "\n")
    svgs = {}
    for record in sessions(records):
        svgs[record["name"]] = out / f"{record['name']}.svg"
        svgs[record["name"]].write_text(errors_svg(record))
    scaling = next((r for r in records if r.get("kind") == "autoscale"), None)
    if scaling is not None:
        from lab.experiments.autoscale import svg as autoscale_svg
        (out / "autoscale.svg").write_text(autoscale_svg(scaling))
    facts = key_facts(records)

    def mark(ok):
        return "not run" if ok is None else ("yes" if ok else "NO")

    md = ["# Local lab: the talk's experiments, measured", "",
          f"Each scenario ran {seconds:g} s of the talk's arrival profile through Envoy.", ""]
    md += [f"- {note}" for note in notes]
    md += ["", markdown_table(records), "", "## Key facts", ""]
    md += [f"- {text}: **{mark(ok)}**" for text, ok in facts]
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

    page = ["<!doctype html><html><head><meta charset='utf-8'><title>Local lab report</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>",
            "<h1>Local lab: the talk's experiments, measured</h1>",
            f"<p>Each scenario ran {seconds:g} s of the talk's arrival profile through Envoy.</p>"]
    page += ["<ul>"] + [f"<li>{html.escape(note)}</li>" for note in notes] + ["</ul>"]
    page.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h, _ in COLUMNS) + "</tr>")
    for r in sessions(records):
        page.append("<tr>" + "".join(f"<td>{html.escape(cell(r, k))}</td>" for _, k in COLUMNS) + "</tr>")
    page.append("</table><h2>Key facts</h2><ul>")
    page += [f"<li>{html.escape(text)}: <b>{mark(ok)}</b></li>" for text, ok in facts]
    page.append("</ul>")
    if skipped:
        page += ["<h2>Skipped</h2><ul>"] + [f"<li>{html.escape(r['name'])}: {html.escape(r['skipped'])}</li>"
                                            for r in skipped] + ["</ul>"]
    if scaling is not None:
        page.append("<h2>Autoscaling: sqrt and the HPA</h2><ul>")
        page += [f"<li>{html.escape(line[2:])}</li>" for line in autoscale_lines(scaling)]
        page += ["</ul>", (out / "autoscale.svg").read_text()]
    page.append("<h2>Errors over time</h2>")
    page += [path.read_text() for path in svgs.values()]
    if screenshots:
        page.append("<h2>What a user sees</h2>")
        page += [f"<figure><img src='{html.escape(r['screenshot'])}' width='480'>"
                 f"<figcaption>{html.escape(r['store'])}</figcaption></figure>" for r in screenshots]
    page.append("</body></html>")
    (out / "report.html").write_text("\n".join(page) + "\n")
    return {"results": results, "markdown": out / "report.md", "html": out / "report.html", "svgs": svgs}
