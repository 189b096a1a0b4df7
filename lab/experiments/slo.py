"""The steady-state hypothesis of a case, judged by Prometheus per phase (issue 36).

`judge(promql, hypothesis, phases, labels)` evaluates each bound of `[case.hypothesis]` over each
phase it applies to, with one instant PromQL query at the phase's end whose range is the phase's
length. It also measures the time to recover (first kill to the moment after which no more 5xx
answers come) and the error budget spent (failed / allowed by the availability bound, whole run).

A check with no answer (Prometheus unreachable, no data, NaN) is not ok and carries a one-line
reason: it makes the verdict "unknown", never a silent pass. A value outside its bound makes it
"broken". `disagreements` says where Locust's client-side counts and Prometheus' differ.

What is queried (`Signals`) depends on where requests enter: the gateway's Envoy in the lab
(`gateway_signals`), or webgatos' own counters (`APP_SIGNALS`) where no Envoy stands in front.
"""

import math
import re
import time
from dataclasses import dataclass

from lab.observe.promql import PromQL, PromQLError

CHECKS = ("availability", "p95_ms", "color_changes", "min_replicas")
# The bound's direction: the measured value must be at least (>=) or at most (<=) the bound.
DIRECTIONS = {"availability": ">=", "p95_ms": "<=", "color_changes": "<=", "min_replicas": ">="}
RECOVERY_STEP_S = 1.0
# increase() needs two samples in its window: three scrapes of 1 s.
RECOVERY_WINDOW_S = 3
SCRAPE_WAIT_S = 15.0


class HypothesisError(ValueError):
    """A hypothesis or phases that cannot be judged; str() says which field."""


@dataclass(frozen=True)
class Selector:
    """A series selector: a metric name (or a regex over names) and fixed label matchers; the
    judge's labels are added as exact matchers."""
    name: str
    matchers: tuple[str, ...] = ()

    def render(self, labels: dict[str, str]) -> str:
        extra = tuple(f'{key}="{_escape(value)}"' for key, value in sorted(labels.items()))
        if re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", self.name):
            return f"{self.name}{{{','.join(self.matchers + extra)}}}"
        return f"{{{','.join((f'__name__=~{_quote(self.name)}',) + self.matchers + extra)}}}"


@dataclass(frozen=True)
class Signals:
    """The series each check reads. `latency_ms` scales the histogram's unit to milliseconds."""
    requests: Selector
    errors: Selector
    latency_buckets: Selector
    latency_ms: float
    sessions_lost: Selector | None = Selector("webgatos_sessions_lost_total")  # None: no sessions (sqrt)
    ready_replicas: Selector = Selector("kube_deployment_status_replicas_ready")


SESSION_ENDPOINTS = 'endpoint=~"/|/api/session"'
APP_SIGNALS = Signals(
    requests=Selector("http_requests_total", (SESSION_ENDPOINTS,)),
    errors=Selector("http_requests_total", (SESSION_ENDPOINTS, 'status=~"5.."')),
    latency_buckets=Selector("http_request_duration_seconds_bucket", (SESSION_ENDPOINTS,)),
    latency_ms=1000.0)


def gateway_signals(port: int | None = None, sessions: bool = True) -> Signals:
    """The gateway's Envoy (its /stats/prometheus), for the listener on `port` (every listener but
    the admin's when None); `sessions=False` for a workload without sessions (sqrt). Without
    Istio's stats configuration Envoy's default tag extraction keeps the tail of a listener's stat
    prefix ("outbound_127.0.0.1_PORT;") in the metric's name, e.g.
    envoy_http_0_0_1_8080__downstream_rq_xx: hence a regex over names."""
    listener = f"envoy_http_.*_{port}__" if port else "envoy_http_.+__"
    return Signals(requests=Selector(f"{listener}downstream_rq_total"),
                   errors=Selector(f"{listener}downstream_rq_xx", ('envoy_response_code_class="5"',)),
                   latency_buckets=Selector(f"{listener}downstream_rq_time_bucket"),
                   latency_ms=1.0, **({} if sessions else {"sessions_lost": None}))


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _quote(value: str) -> str:
    return f'"{_escape(value)}"'


# The PromQL of each check over a window of `w` seconds.

def availability_query(signals: Signals, labels: dict, w: int) -> str:
    errors, requests = signals.errors.render(labels), signals.requests.render(labels)
    # No 5xx series at all means no failures: `or vector(0)`. No request series stays empty.
    return f"1 - ((sum(increase({errors}[{w}s])) or vector(0)) / sum(increase({requests}[{w}s])))"


def p95_query(signals: Signals, labels: dict, w: int) -> str:
    buckets = signals.latency_buckets.render(labels)
    return f"histogram_quantile(0.95, sum by (le) (increase({buckets}[{w}s]))) * {signals.latency_ms:g}"


def color_changes_query(signals: Signals, labels: dict, w: int) -> str:
    return f"sum(increase({signals.sessions_lost.render(labels)}[{w}s]))"


def min_replicas_query(signals: Signals, labels: dict, w: int) -> str:
    return f"min_over_time(sum({signals.ready_replicas.render(labels)})[{w}s:1s])"


QUERIES = {"availability": availability_query, "p95_ms": p95_query, "color_changes": color_changes_query,
           "min_replicas": min_replicas_query}


def failed_query(signals: Signals, labels: dict, w: int) -> str:
    return f"sum(increase({signals.errors.render(labels)}[{w}s])) or vector(0)"


def requests_query(signals: Signals, labels: dict, w: int) -> str:
    return f"sum(increase({signals.requests.render(labels)}[{w}s]))"


def recovery_query(signals: Signals, labels: dict) -> str:
    return f"sum(increase({signals.errors.render(labels)}[{RECOVERY_WINDOW_S}s])) or vector(0)"


# Input

def hypothesis_of(case) -> dict:
    """A case's [case.hypothesis] (lab/experiments/cases.py) as judge() takes it; {} without bounds."""
    bounds = case.hypothesis.bounds()
    return {**bounds, "phases": list(case.hypothesis.phases)} if bounds else {}


def validate(hypothesis: dict, phases: dict) -> tuple[dict[str, float], list[str]]:
    """The bounds and the phases they apply to; HypothesisError naming the first bad field."""
    if not isinstance(hypothesis, dict):
        raise HypothesisError(f"hypothesis must be a table, not {type(hypothesis).__name__}")
    unknown = sorted(set(hypothesis) - set(CHECKS) - {"phases"})
    if unknown:
        raise HypothesisError(f"unknown hypothesis key(s) {', '.join(unknown)}: use {', '.join(CHECKS)}, phases")
    bounds = {}
    for check in CHECKS:
        if check in hypothesis:
            value = hypothesis[check]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0 or (check == "availability" and value > 1):
                limit = "a ratio from 0 to 1" if check == "availability" else "a number >= 0"
                raise HypothesisError(f"hypothesis {check}={value!r}: use {limit}")
            bounds[check] = float(value)
    applies = hypothesis.get("phases", list(phases))
    if not isinstance(applies, list | tuple) or not all(isinstance(name, str) for name in applies):
        raise HypothesisError(f"hypothesis phases={applies!r}: a list of phase names")
    if not isinstance(phases, dict) or not phases:
        raise HypothesisError("no phases to judge: the run recorded none")
    for name, window in phases.items():
        if not (isinstance(window, list | tuple) and len(window) == 2
                and all(isinstance(t, int | float) and not isinstance(t, bool) for t in window)
                and window[1] >= window[0]):
            raise HypothesisError(f"phase {name!r}={window!r}: use [start, end] in epoch seconds, end after start")
    return bounds, list(applies)


# Judging

def _check(promql: PromQL, check: str, query: str, at: float, bound: float) -> dict:
    entry = {"check": check, "promql": query, "bound": bound, "value": None, "ok": False, "reason": ""}
    try:
        value = promql.value(query, at)
    except PromQLError as error:
        entry["reason"] = f"no answer: {error.reason}"
        return entry
    entry["value"] = round(value, 6)
    direction = DIRECTIONS[check]
    entry["ok"] = value >= bound if direction == ">=" else value <= bound
    if not entry["ok"]:
        entry["reason"] = f"{check} {value:.6g} is not {direction} {bound:g}"
    return entry


def wait_for_scrapes(promql: PromQL, after: float, timeout: float = SCRAPE_WAIT_S) -> str:
    """Wait (bounded) until Prometheus has scraped past `after`; "" or why not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if promql.last_scrape() >= after:
                return ""
            reason = f"Prometheus has not scraped past {after:.0f} yet"
        except PromQLError as error:
            reason = str(error)
        if time.monotonic() > deadline:
            return f"{reason} (waited {timeout:.0f}s)"
        time.sleep(0.25)


def judge(promql: PromQL, hypothesis: dict, phases: dict, labels: dict | None = None,
          signals: Signals = APP_SIGNALS, scrape_wait: float = SCRAPE_WAIT_S) -> dict:
    """{verdict, phases: {phase: [{check, promql, value, bound, ok, reason}]}, time_to_recover_s,
    error_budget_spent, totals, notes}: the hypothesis over each phase (module docstring)."""
    labels = labels or {}
    bounds, applies = validate(hypothesis, phases)
    if "color_changes" in bounds and signals.sessions_lost is None:
        raise HypothesisError("hypothesis color_changes: this workload keeps no sessions to count")
    end = max(window[1] for window in phases.values())
    start = min(window[0] for window in phases.values())
    unscraped = wait_for_scrapes(promql, end, scrape_wait)
    judged: dict[str, list[dict]] = {}
    notes: list[str] = []
    for name, (t0, t1) in phases.items():
        if name not in applies:
            continue
        if t1 - t0 < 1:
            notes.append(f"phase {name} lasted {t1 - t0:.1f}s: too short to judge")
            continue
        width = max(1, round(t1 - t0))
        checks = [_check(promql, check, QUERIES[check](signals, labels, width), t1, bound)
                  for check, bound in bounds.items()]
        if unscraped:
            for entry in checks:
                entry["reason"] = entry["reason"] or f"judged on partial data: {unscraped}"
        judged[name] = checks
    totals = _totals(promql, signals, labels, start, end, notes)
    budget = _error_budget(totals, bounds.get("availability"), notes)
    recover = time_to_recover(promql, signals, labels, phases, notes)
    return {"verdict": verdict(judged), "phases": judged, "time_to_recover_s": recover,
            "error_budget_spent": budget, "totals": totals, "notes": notes}


def judged_or_unknown(promql: PromQL | None, unavailable: str, hypothesis: dict, phases: dict, labels: dict,
                      signals: Signals) -> dict:
    """judge(), or unjudged() saying why it could not: no Prometheus (`unavailable`), a failed
    query, or a hypothesis these signals cannot judge."""
    if promql is None:
        return unjudged(f"no Prometheus: {unavailable or 'not started'}")
    try:
        return judge(promql, hypothesis, phases, labels, signals)
    except (PromQLError, HypothesisError) as error:
        return unjudged(f"Prometheus could not judge: {error}")


def unjudged(reason: str) -> dict:
    """The SLO part of a record when Prometheus could not judge: never a silent pass."""
    return {"verdict": "unknown", "phases": {}, "time_to_recover_s": None, "error_budget_spent": None,
            "totals": {}, "notes": [reason]}


def verdict(judged: dict[str, list[dict]]) -> str:
    """"broken" when a value misses its bound, else "unknown" when a check had no answer (or
    nothing was judged), else "held"."""
    entries = [entry for checks in judged.values() for entry in checks]
    if any(not entry["ok"] and entry["value"] is not None for entry in entries):
        return "broken"
    if not entries or any(not entry["ok"] for entry in entries):
        return "unknown"
    return "held"


def _totals(promql: PromQL, signals: Signals, labels: dict, start: float, end: float,
            notes: list[str]) -> dict:
    width = max(1, round(end - start))
    queries = {"requests": requests_query(signals, labels, width), "failed": failed_query(signals, labels, width)}
    if signals.sessions_lost is not None:
        queries["color_changes"] = color_changes_query(signals, labels, width)
    totals = dict.fromkeys(queries)
    for key, query in queries.items():
        try:
            totals[key] = round(promql.value(query, end), 3)
        except PromQLError as error:
            notes.append(f"total {key}: {error}")
    return totals


def _error_budget(totals: dict, availability: float | None, notes: list[str]) -> float | None:
    if availability is None:
        return None
    requests, failed = totals["requests"], totals["failed"]
    if requests is None or failed is None:
        notes.append("error budget: unknown, the whole run's requests or failures had no answer")
        return None
    allowed = (1 - availability) * requests
    if allowed <= 0:
        if failed > 0:
            notes.append(f"error budget: none allowed (availability {availability:g}) and {failed:g} failed")
            return None
        return 0.0
    return round(failed / allowed, 4)


def time_to_recover(promql: PromQL, signals: Signals, labels: dict, phases: dict,
                    notes: list[str]) -> float | None:
    """Seconds from the first kill (the fault phase's start) to the first second after which the
    5xx count stays 0 until the run's end; None without a fault phase or when it never recovers."""
    if "fault" not in phases:
        return None
    kill = phases["fault"][0]
    end = max(window[1] for window in phases.values())
    query = recovery_query(signals, labels)
    try:
        points = promql.series(query, kill, end, RECOVERY_STEP_S)
    except PromQLError as error:
        notes.append(f"time to recover: {error}")
        return None
    failing = [t for t, value in points if value > 0]
    if not failing:
        return 0.0
    if failing[-1] >= points[-1][0]:
        notes.append(f"time to recover: 5xx answers until the run's end ({query})")
        return None
    return round(failing[-1] - kill, 1)


# Second opinion

def disagreements(record: dict, slo: dict) -> list[str]:
    """Where Locust's client-side counts (record's failed_requests, color_changes) and
    Prometheus' server-side totals disagree on whether something went wrong: one line each."""
    totals = slo.get("totals") or {}
    lines = []
    for client_key, server_key, what in (("failed_requests", "failed", "failed requests"),
                                         ("color_changes", "color_changes", "color changes")):
        if totals and server_key not in totals:  # not counted on the server for this workload
            continue
        client, server = record.get(client_key), totals.get(server_key)
        if client is None or server is None:
            if client is not None:
                lines.append(f"{what}: Locust counted {client}, Prometheus gave no answer")
            continue
        if (client > 0) != (server > 0):
            lines.append(f"{what}: Locust counted {client}, Prometheus {server:g}")
    return lines


# The report's plots

SERIES_WINDOW_S = 2  # rate() over two 1 s scrapes


def plot_series(promql: PromQL, signals: Signals, labels: dict, start: float, end: float,
                step: float = 1.0) -> tuple[dict[str, list[tuple[float, float]]], list[str]]:
    """What the report plots from Prometheus for one run, as plots.case_figure takes it: the entry
    point's requests and 5xx answers per second, and the ready replicas; {label: [(epoch, value)]},
    with one line per series that had no answer."""
    queries = {
        "requests (requests/s)": f"sum(rate({signals.requests.render(labels)}[{SERIES_WINDOW_S}s]))",
        "5xx answers (requests/s)": (f"sum(rate({signals.errors.render(labels)}[{SERIES_WINDOW_S}s])) "
                                     "or vector(0)"),
        "ready replicas (replicas)": f"sum({signals.ready_replicas.render(labels)})",
    }
    found, missing = {}, []
    for label, query in queries.items():
        try:
            found[label] = promql.series(query, start, end, step)
        except PromQLError as error:
            missing.append(f"plot {label}: {error}")
    return found, missing
