"""The report's figures, drawn with matplotlib from plain data: a case's record (results.json) and,
when given, series from Prometheus' range queries. One figure per case (requests/s and failed
requests/s, pod kills, the phases of the run), the autoscaling case's figure, and the per-phase
SLO chart. Figures are written as SVG (or PNG, by the path's suffix), byte for byte the same on
every run: a fixed hash salt per figure, no date, the font matplotlib ships (its metrics place the
text, so another machine's fonts cannot move it).
"""

import math
import re
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

import matplotlib as mpl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import blended_transform_factory

TIME_AXIS = "seconds since the load started (s)"
STYLE = {
    "svg.fonttype": "none",  # text stays text: searchable, selectable, small
    "font.family": ["DejaVu Sans", "sans-serif"], "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8,
    "axes.grid": True, "grid.alpha": 0.3, "grid.linestyle": ":", "axes.spines.top": False,
    "axes.spines.right": False, "figure.dpi": 100, "savefig.dpi": 100,
}
# Metadata that would change between runs is left out.
METADATA = {".svg": {"Date": None}, ".png": {"Software": None}}
PHASE_COLORS = {"baseline": "#1f77b4", "fault": "#d62728", "recovery": "#2ca02c",
                "ramp up": "#9467bd", "hold": "#ff7f0e", "ramp down": "#8c564b"}
REQUESTS_COLOR, FAILURES_COLOR, KILL_COLOR, RESCALE_COLOR = "#555555", "#d62728", "#b00000", "#b00000"
# The unit of each check of a steady-state hypothesis (lab/experiments/cases.toml), for its axis.
CHECK_UNITS = {"availability": "ratio of non-5xx responses", "p95_ms": "ms", "color_changes": "color changes",
               "min_replicas": "ready replicas"}
PANEL_HEIGHT, FIGURE_WIDTH = 2.4, 8.0  # inches


@contextmanager
def style(salt: str):
    """matplotlib's settings for one figure; the salt keeps the SVG's ids stable and distinct per figure."""
    with mpl.rc_context({**STYLE, "svg.hashsalt": f"resilience-lab:{salt}"}):
        yield


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "figure"


def save(figure: Figure, path: Path) -> Path:
    path = Path(path)
    if path.suffix not in METADATA:
        raise ValueError(f"{path}: a figure is written as .svg or .png, not {path.suffix or 'a file without suffix'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, metadata=METADATA[path.suffix])
    return path


def title_of(record: dict, what: str) -> str:
    substrate = record.get("substrate")
    return f"{record.get('name', 'unnamed case')}: {what}" + (f" ({substrate})" if substrate else "")


def epoch_phases(record: dict) -> list[tuple[str, float, float]]:
    """(name, start, end) of the record's phases in epoch seconds, in time order; ValueError naming
    the first malformed one."""
    found = []
    for name, window in (record.get("phases") or {}).items():
        if (not isinstance(window, list | tuple) or len(window) != 2
                or not all(isinstance(v, int | float) for v in window) or window[1] < window[0]):
            raise ValueError(f"{record.get('name')}: phase {name!r} is {window!r}, not [start, end] in epoch seconds")
        found.append((name, float(window[0]), float(window[1])))
    return sorted(found, key=lambda phase: phase[1])


def origin_of(record: dict) -> float | None:
    """The epoch the record's `t` values count from: its `started_at`, else the start of its first
    phase (the baseline starts with the load); None when the record has neither."""
    if record.get("started_at") is not None:
        return float(record["started_at"])
    phases = epoch_phases(record)
    return phases[0][1] if phases else None


def relative_phases(record: dict, origin: float) -> list[tuple[str, float, float]]:
    """The record's phases in seconds since `origin`, in time order."""
    return [(name, start - origin, end - origin) for name, start, end in epoch_phases(record)]


def shade(axes: Axes, phases: Iterable[tuple[str, float, float]], *, labelled: bool) -> None:
    """Each phase as a tinted band, named in the legend when `labelled` (the figure's first panel):
    a name written over a band would collide with its neighbour's when a phase is short."""
    for name, start, end in phases:
        axes.axvspan(start, end, color=PHASE_COLORS.get(name, "#7f7f7f"), alpha=0.12, linewidth=0, zorder=0,
                     label=f"{name} phase" if labelled else None, gid=f"phase-{slug(name)}" if labelled else None)


def no_data(axes: Axes, why: str) -> None:
    axes.text(0.5, 0.5, f"no data: {why}", transform=axes.transAxes, ha="center", va="center", color="#b00000")


def mark_times(axes: Axes, times: Iterable[float], label: str | None, color: str, gid: str | None) -> None:
    """Vertical dashed lines (pod kills, HPA rescales), one legend entry for all of them; a gid
    per line when given (the first panel's, which the tests and the HTML can find)."""
    for number, t in enumerate(times, start=1):
        axes.axvline(t, color=color, linestyle="--", linewidth=1, label=label if number == 1 else None,
                     gid=f"{gid}-{number}" if gid else None)


def unit_of(label: str) -> str:
    """The unit a Prometheus series' label ends with, "gateway 5xx (requests/s)" -> "requests/s"."""
    found = re.search(r"\(([^()]+)\)\s*$", label)
    return found.group(1) if found else "value"


def prometheus_panels(series: dict, origin: float) -> dict[str, list[tuple[str, list[float], list[float]]]]:
    """The series grouped by unit (one panel each): unit -> [(label, t, values)], t since `origin`.
    Accepts query_range's own [epoch, "value"] pairs; "NaN" leaves a gap."""
    panels: dict[str, list] = {}
    for label, points in series.items():
        try:
            pairs = [(float(epoch) - origin, float(value)) for epoch, value in points]
        except (TypeError, ValueError) as error:
            raise ValueError(f"Prometheus series {label!r}: points are (epoch, value) pairs ({error})") from None
        panels.setdefault(unit_of(label), []).append(
            (label, [t for t, _ in pairs], [v for _, v in pairs]))
    return panels


def case_figure(record: dict, path: Path, prometheus_series: dict | None = None) -> Path:
    """One case's figure: requests/s and failed requests/s over the run (record["series"]), each
    pod kill a dashed line, the phases shaded and named; below, one panel per unit of the
    Prometheus series given ({label: [(epoch, value), ...]}, e.g. the gateway's 5xx rate)."""
    series = record.get("series") or []
    kills = record.get("kill_times_s") or []
    origin = origin_of(record)
    if origin is None and prometheus_series:
        origin = min((float(p[0]) for points in prometheus_series.values() for p in points), default=0.0)
    phases = relative_phases(record, origin) if origin is not None else []
    panels = prometheus_panels(prometheus_series or {}, origin or 0.0)
    with style(record.get("name", "case")):
        figure = Figure(figsize=(FIGURE_WIDTH, PANEL_HEIGHT * (1 + len(panels)) + 0.4), layout="constrained")
        axes_list = figure.subplots(1 + len(panels), 1, sharex=True, squeeze=False)[:, 0]
        top = axes_list[0]
        figure.suptitle(title_of(record, "requests over time"))
        if series:
            times = [p["t"] for p in series]
            top.plot(times, [p["requests"] for p in series], color=REQUESTS_COLOR, linewidth=1.3, label="requests/s")
            top.plot(times, [p["failures"] for p in series], color=FAILURES_COLOR, linewidth=1.3,
                     label="failed requests/s")
        else:
            no_data(top, "the run recorded no requests over time")
        top.set_ylabel("requests/s")
        top.set_ylim(bottom=0)
        for number, axes in enumerate(axes_list):
            shade(axes, phases, labelled=number == 0)
            mark_times(axes, kills, f"pod kill ({len(kills)})" if number == 0 else None, KILL_COLOR,
                       "kill" if number == 0 else None)
        for axes, (unit, lines) in zip(axes_list[1:], panels.items(), strict=True):
            for label, times, values in lines:
                axes.plot(times, values, linewidth=1.3, label=label if times else f"{label}: no data")
            if not any(times for _, times, _ in lines):
                no_data(axes, "Prometheus returned no samples")
            axes.set_ylabel(unit)
            axes.set_title("from Prometheus", loc="left", fontsize=8)
        ends = [p["t"] for p in series] + list(kills) + [end for _, _, end in phases] + [
            t for lines in panels.values() for _, times, _ in lines for t in times] + [record.get("seconds") or 1]
        axes_list[-1].set_xlim(min([0.0] + [start for _, start, _ in phases]), max(ends))
        axes_list[-1].set_xlabel(TIME_AXIS)
        for axes in axes_list:
            if axes.get_legend_handles_labels()[0]:
                axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return save(figure, path)


def ramp_phases(record: dict) -> list[tuple[str, float, float]]:
    """The autoscaling case's load phases from its ramp (seconds since the load started)."""
    ramp = record.get("ramp") or {}
    up, hold, down = (float(ramp.get(key) or 0) for key in ("up_s", "hold_s", "down_s"))
    phases = [("ramp up", 0.0, up), ("hold", up, up + hold), ("ramp down", up + hold, up + hold + down)]
    return [phase for phase in phases if phase[2] > phase[1]]


def new_size(message: str) -> str:
    """"New size: 3; reason: cpu above target" -> "3" (the HPA's rescale event)."""
    found = re.search(r"New size: (\d+)", message)
    return found.group(1) if found else ""


def autoscale_figure(record: dict, path: Path) -> Path:
    """The autoscaling case over time, three panels: replicas (current, desired, ready), CPU per
    replica in cores, and the offered load (requests/s) with its p95 (ms); the load's phases
    shaded, each HPA rescale a dashed line with the new size, and the bound for the scale-down."""
    samples, load, events = record.get("samples") or [], record.get("load") or [], record.get("events") or []
    # The load's own phases (its ramp) when recorded: what the HPA answers to; else the SLO's phases.
    phases = ramp_phases(record) or (relative_phases(record, origin_of(record)) if record.get("phases") else [])
    with style(record.get("name", "autoscale")):
        figure = Figure(figsize=(FIGURE_WIDTH, PANEL_HEIGHT * 3 + 0.4), layout="constrained")
        replicas, cpu, offered = figure.subplots(3, 1, sharex=True)
        figure.suptitle(title_of(record, f"the HPA scaling {record.get('app', 'the workload')} under a ramp of load"))
        if samples:
            times = [s["t"] for s in samples]
            replicas.step(times, [s["replicas"] for s in samples], where="post", linewidth=1.5, label="replicas")
            replicas.step(times, [s["desired"] for s in samples], where="post", linestyle="--", linewidth=1.2,
                          label="desired by the HPA")
            if any("ready" in s for s in samples):
                replicas.step(times, [s.get("ready", math.nan) for s in samples], where="post", linestyle=":",
                              linewidth=1.2, label="ready")
            pods = sorted({name for s in samples for name in s.get("cpu") or {}})
            for pod in pods:
                points = [(s["t"], s["cpu"][pod]) for s in samples if pod in (s.get("cpu") or {})]
                cpu.plot([t for t, _ in points], [v for _, v in points], linewidth=1.1, label=pod)
            if not pods:
                no_data(cpu, "no sample of the Pods' CPU was recorded")
        else:
            no_data(replicas, "no sample of the HPA was recorded")
            no_data(cpu, "no sample of the Pods' CPU was recorded")
        if load:
            offered.plot([h["t"] for h in load], [h["rps"] for h in load], color=REQUESTS_COLOR, linewidth=1.3,
                         label="requests/s")
            latency = offered.twinx()
            timed = [h for h in load if h.get("p95_ms") is not None]
            latency.plot([h["t"] for h in timed], [h["p95_ms"] for h in timed], color="#9467bd", linewidth=1.1,
                         label="p95 (ms)")
            latency.set_ylabel("p95 latency (ms)")
            latency.set_ylim(bottom=0)
            latency.grid(False)
            latency.spines["right"].set_visible(True)
        else:
            no_data(offered, "Locust recorded no history of the load")
        replicas.set_ylabel("replicas")
        replicas.yaxis.set_major_locator(MaxNLocator(integer=True))
        cpu.set_ylabel("CPU per replica (cores)")
        offered.set_ylabel("offered load (requests/s)")
        rescales = [e["t"] for e in events]
        for number, axes in enumerate((replicas, cpu, offered)):
            axes.set_ylim(bottom=0)
            shade(axes, phases, labelled=number == 0)
            mark_times(axes, rescales, f"HPA rescale ({len(rescales)})" if number == 0 else None, RESCALE_COLOR,
                       "rescale" if number == 0 else None)
        on_top = blended_transform_factory(replicas.transData, replicas.transAxes)
        for event in events:
            replicas.text(event["t"], 0.02, f" → {new_size(event.get('message', ''))}", transform=on_top,
                          color=RESCALE_COLOR, fontsize=8, va="bottom")
        ends = [s["t"] for s in samples] + [h["t"] for h in load] + rescales + [end for _, _, end in phases] + [1]
        if record.get("load_over_s") is not None and record.get("scale_down_bound_s") is not None:
            bound = record["load_over_s"] + record["scale_down_bound_s"]
            replicas.axvline(bound, color="black", linestyle=":", linewidth=1, label="scale-down bound")
            ends.append(bound)
        offered.set_xlim(0, max(ends) * 1.02)
        offered.set_xlabel(TIME_AXIS)
        handles, labels = offered.get_legend_handles_labels()
        if load:
            more = latency.get_legend_handles_labels()
            handles, labels = handles + more[0], labels + more[1]
        for axes, (axes_handles, axes_labels) in ((replicas, replicas.get_legend_handles_labels()),
                                                  (cpu, cpu.get_legend_handles_labels()), (offered, (handles, labels))):
            if axes_handles:
                axes.legend(axes_handles, axes_labels, loc="upper left", bbox_to_anchor=(1.08, 1.0), frameon=False)
        return save(figure, path)


def first_time(label: str, seen: set) -> str | None:
    """`label` the first time it is asked for, None after: one legend entry per kind of mark."""
    if label in seen:
        return None
    seen.add(label)
    return label


def phase_chart(record: dict, path: Path) -> Path | None:
    """The steady-state hypothesis judged per phase (record["slo"]): one panel per check, its
    measured value in each phase (a point: green within its bound, red broken) against the bound
    (dashed); "no data" where Prometheus gave none. None when the record has no SLO verdict."""
    slo = record.get("slo") or {}
    by_phase = slo.get("phases") or {}
    checks = list(dict.fromkeys(entry["check"] for entries in by_phase.values() for entry in entries))
    if not checks:
        return None
    phases = list(by_phase)
    with style(f"{record.get('name', 'case')}-slo"):
        figure = Figure(figsize=(FIGURE_WIDTH * 0.75, 1.9 * len(checks) + 0.8), layout="constrained")
        axes_list = figure.subplots(len(checks), 1, sharex=True, squeeze=False)[:, 0]
        figure.suptitle("\n".join([title_of(record, "steady-state hypothesis per phase"), *summary_lines(slo)]))
        for axes, check in zip(axes_list, checks, strict=True):
            seen: set[str] = set()
            for x, phase in enumerate(phases):
                entry = next((e for e in by_phase[phase] if e["check"] == check), None)
                if entry is None:
                    continue  # this bound does not apply in this phase
                bound, value = entry.get("bound"), entry.get("value")
                if bound is not None:
                    axes.hlines(bound, x - 0.3, x + 0.3, colors="black", linestyles="dashed",
                                label=first_time("bound", seen))
                if value is None:
                    axes.annotate("no data", (x, bound if bound is not None else 0), textcoords="offset points",
                                  xytext=(0, 6), ha="center", va="bottom", color="#b00000",
                                  gid=f"no-data-{slug(check)}-{slug(phase)}")
                    continue
                ok = bool(entry.get("ok"))
                axes.plot([x], [value], marker="o" if ok else "X", markersize=8, linestyle="none",
                          color="#2ca02c" if ok else "#d62728",
                          label=first_time("within bound" if ok else "broken", seen),
                          gid=f"{'ok' if ok else 'broken'}-{slug(check)}-{slug(phase)}")
                axes.annotate(f"{value:.4g}", (x, value), textcoords="offset points", xytext=(8, 0), va="center")
            unit = CHECK_UNITS.get(check)
            axes.set_ylabel(f"{check}\n({unit})" if unit else check)
            axes.margins(y=0.25)
            if seen:
                axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        axes_list[-1].set_xticks(range(len(phases)), labels=phases)
        axes_list[-1].set_xlim(-0.6, len(phases) - 0.4)
        axes_list[-1].set_xlabel("phase of the run")
        return save(figure, path)


def summary_lines(slo: dict) -> list[str]:
    """The verdict, the time to recover and the error budget spent (a fraction of the budget), as given."""
    parts = [f"verdict: {slo['verdict']}"] if slo.get("verdict") is not None else []
    if slo.get("time_to_recover_s") is not None:
        parts.append(f"time to recover {slo['time_to_recover_s']:g} s")
    if slo.get("error_budget_spent") is not None:
        parts.append(f"error budget spent {slo['error_budget_spent']:.0%}")
    return ["; ".join(parts)] if parts else []
