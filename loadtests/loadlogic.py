"""The Locust-free half of the load tests: option values, the color check, the arrival and ramp
schedules, the per-run tally, the quality gates and the summary.

Nothing here imports Locust, because importing it monkey-patches the whole process with gevent;
unit tests import this module directly. locustfile.py wires it to Locust's events.
"""

import argparse
import math
import re
import socket
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urlsplit

from durations import parse_seconds  # a sibling: Locust puts the locustfile's folder on sys.path

# Error types: one name per kind of failure, so Locust's error table and the summary count the
# same things (a message with the colors in it would make one table row per color pair).
COLOR_CHANGED = "color changed"
MISSING_COLOR = "missing color"
UNEXPECTED_BODY = "unexpected body"

OFF = "off"
COLOR_PATTERN = re.compile(r"^#[0-9a-f]{6}$")
BODY_TAG_PATTERN = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


# --- option values -------------------------------------------------------------------------
# Each parser takes the text of a flag or environment variable (or a value parsed before, when
# Locust's web UI hands it back) and raises argparse.ArgumentTypeError with the accepted forms,
# which argparse prints as one line naming the flag.


def _number(text) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def p95_threshold_ms(text) -> float | None:
    """Milliseconds > 0, or 'off' (None) to disable the latency gate."""
    if text is None or str(text).strip().lower() == OFF:
        return None
    try:
        value = _number(text)
    except argparse.ArgumentTypeError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds > 0 (e.g. 100) or 'off', got {text!r}")
    return value


def error_rate_threshold(text) -> float | None:
    """A share of failed requests: 0..1 (0.01) or a percentage (1%); 'off' (None) disables."""
    if text is None or str(text).strip().lower() == OFF:
        return None
    raw = str(text).strip()
    scale = 100.0 if raw.endswith("%") else 1.0
    try:
        value = _number(raw.removesuffix("%")) / scale
    except argparse.ArgumentTypeError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share 0..1 (e.g. 0.01), a percentage (1%) or 'off', got {text!r}")
    return value


def positive_int(text) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def positive_rate(text) -> float:
    try:
        value = _number(text)
    except argparse.ArgumentTypeError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected users per second > 0 (e.g. 10 or 0.5), got {text!r}")
    return value


def duration_seconds(text) -> float:
    """Seconds as `90`, `90s`, `2m`, `1m30s`, `500ms` or `1h` (durations.py); 0 is allowed."""
    try:
        seconds = parse_seconds(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:  # also refuses nan
        raise argparse.ArgumentTypeError(f"expected a duration like 90, 90s, 2m or 1m30s, got {text!r}")
    return seconds


def target_problem(url: str | None, timeout: float = 3.0) -> str | None:
    """Why `url` cannot be load-tested, or None when something accepts TCP connections there.
    A TCP connect has no side effect on the app (an HTTP request would create a session)."""
    if not url:
        return "no target: pass --host URL (or set LOCUST_HOST)"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"invalid target {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return f"invalid target {url!r}: bad port"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return None
    except socket.gaierror as error:
        return f"cannot reach target {url}: cannot resolve {parts.hostname!r} ({error.strerror})"
    except TimeoutError:
        return f"cannot reach target {url}: no answer within {timeout:g} s"
    except OSError as error:
        return f"cannot reach target {url}: {(error.strerror or str(error)).lower()}"


# --- the functional check ------------------------------------------------------------------


class _BodyAttributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attributes: dict[str, str | None] = {}

    def handle_starttag(self, tag, attrs):
        if tag == "body":
            self.attributes = dict(attrs)


def page_color(html: str | None) -> str | None:
    """The `data-color` of the page's <body> (docs/contracts.md), lower-case, or None."""
    match = BODY_TAG_PATTERN.search(html or "")
    if match is None:
        return None
    parser = _BodyAttributes()
    parser.feed(match.group(0))
    color = (parser.attributes.get("data-color") or "").strip().lower()
    return color if COLOR_PATTERN.match(color) else None


def response_error(status_code: int | None, exception: BaseException | None) -> str | None:
    """The error type of a response (HTTP status, or the transport error's class), else None."""
    if status_code and status_code >= 400:
        return f"HTTP {status_code}"
    if exception is not None:
        return type(exception).__name__
    return None if status_code else "no response"


class ColorCheck:
    """One virtual user's color: the talk's check is that it never changes within a session."""

    def __init__(self):
        self.color: str | None = None

    def observe(self, html: str | None) -> str | None:
        """The error type of this page (missing or changed color), or None when it passes."""
        color = page_color(html)
        if color is None:
            return MISSING_COLOR
        previous, self.color = self.color, color
        if previous is not None and color != previous:
            return COLOR_CHANGED
        return None


# --- load profiles -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArrivalProfile:
    """The talk's artillery phase: `rate` new users per second for `seconds`, each doing its visit
    once; then up to `drain_seconds` for the users still visiting to finish."""

    rate: float
    seconds: float
    drain_seconds: float = 30.0

    @property
    def total_users(self) -> int:
        return max(1, round(self.rate * self.seconds))

    @property
    def batch_interval(self) -> float:
        """Locust's dispatcher starts floor(rate) users at once (at least one), this often."""
        return max(1, math.floor(self.rate)) / self.rate

    def tick(self, run_time: float, finished_users: int) -> tuple[int, float] | None:
        """(user count, spawn rate) for a LoadTestShape, None to end the run.

        The count stays at the total for the whole run, so Locust's dispatcher starts exactly
        `total_users` users at `rate` and never stops one: lowering the count would kill
        visiting users, and users that stopped themselves would be started again."""
        if run_time < self.seconds:
            return self.total_users, self.rate
        if finished_users < self.total_users and run_time < self.seconds + self.drain_seconds:
            return self.total_users, self.rate
        return None


@dataclass(frozen=True)
class RampProfile:
    """Up to `users` over `up_seconds`, hold them `hold_seconds`, back to 0 over `down_seconds`."""

    users: int
    up_seconds: float
    hold_seconds: float
    down_seconds: float

    def tick(self, run_time: float) -> tuple[int, float] | None:
        if run_time < self.up_seconds + self.hold_seconds:
            return self.users, self.users / self.up_seconds if self.up_seconds > 0 else float(self.users)
        if run_time < self.up_seconds + self.hold_seconds + self.down_seconds:
            return 0, self.users / self.down_seconds
        return None


# --- the tally -----------------------------------------------------------------------------


FAILURE_SAMPLES_KEPT = 20


def failure_detail(*, at: float, status: int | None, elapsed_ms: float | None, replica: str | None,
                   body: str | None, exception: BaseException | None) -> dict:
    """What one failed request looked like: when, its status and time, who answered and what it said."""
    return {"at": round(at, 3), "status": status or None,
            "ms": None if elapsed_ms is None else round(elapsed_ms, 1), "replica": replica,
            "said": (str(exception) if exception is not None and not body else (body or ""))[:200].strip()}


def _int_keys(mapping: Mapping) -> Counter:
    return Counter({int(key): value for key, value in mapping.items()})


@dataclass
class Tally:
    """What the virtual users of one Locust process did. Workers send theirs to the master as a
    snapshot (cumulative), so the master keeps the latest one per worker and sums them."""

    users_created: int = 0
    users_completed: int = 0
    users_finished: int = 0
    users_failed_by_type: Counter = field(default_factory=Counter)
    failed_requests_by_type: Counter = field(default_factory=Counter)
    color_changes: int = 0
    responses_by_replica: Counter = field(default_factory=Counter)
    users_created_per_second: Counter = field(default_factory=Counter)
    first_user_at: float | None = None
    last_user_at: float | None = None
    # The first few failed requests as they happened, so a failure can be read, not only counted.
    failure_samples: list = field(default_factory=list)

    @property
    def users_failed(self) -> int:
        return sum(self.users_failed_by_type.values())

    def user_created(self, now: float) -> None:
        self.users_created += 1
        self.users_created_per_second[int(now)] += 1
        self.first_user_at = now if self.first_user_at is None else min(self.first_user_at, now)
        self.last_user_at = now if self.last_user_at is None else max(self.last_user_at, now)

    def request_failed(self, error_type: str, first_of_user: bool, detail: Mapping | None = None) -> None:
        self.failed_requests_by_type[error_type] += 1
        if len(self.failure_samples) < FAILURE_SAMPLES_KEPT:
            self.failure_samples.append({"error": error_type, **(detail or {})})
        if error_type == COLOR_CHANGED:
            self.color_changes += 1
        if first_of_user:
            self.users_failed_by_type[error_type] += 1

    def user_finished(self, failed: bool) -> None:
        self.users_finished += 1
        if not failed:
            self.users_completed += 1

    def snapshot(self) -> dict:
        return {
            "users_created": self.users_created,
            "users_completed": self.users_completed,
            "users_finished": self.users_finished,
            "users_failed_by_type": dict(self.users_failed_by_type),
            "failed_requests_by_type": dict(self.failed_requests_by_type),
            "color_changes": self.color_changes,
            "responses_by_replica": dict(self.responses_by_replica),
            # Keys as text: the snapshot travels as msgpack and is also written as JSON.
            "users_created_per_second": {str(k): v for k, v in self.users_created_per_second.items()},
            "first_user_at": self.first_user_at,
            "last_user_at": self.last_user_at,
            "failure_samples": list(self.failure_samples),
        }

    @classmethod
    def merged(cls, snapshots: Iterable[dict]) -> "Tally":
        total = cls()
        for snapshot in snapshots:
            total.users_created += snapshot["users_created"]
            total.users_completed += snapshot["users_completed"]
            total.users_finished += snapshot["users_finished"]
            total.users_failed_by_type.update(snapshot["users_failed_by_type"])
            total.failed_requests_by_type.update(snapshot["failed_requests_by_type"])
            total.color_changes += snapshot["color_changes"]
            total.responses_by_replica.update(snapshot["responses_by_replica"])
            total.users_created_per_second.update(_int_keys(snapshot["users_created_per_second"]))
            total.failure_samples.extend(snapshot.get("failure_samples", []))
            for moment in (snapshot["first_user_at"], snapshot["last_user_at"]):
                if moment is not None:
                    total.first_user_at = min(total.first_user_at or moment, moment)
                    total.last_user_at = max(total.last_user_at or moment, moment)
        total.failure_samples = sorted(total.failure_samples, key=lambda f: f.get("at", 0))[:FAILURE_SAMPLES_KEPT]
        return total


# --- quality gates and the summary ---------------------------------------------------------


@dataclass(frozen=True)
class Gates:
    """Thresholds; None disables one. Defaults are the talk's: p95 <= 100 ms, no errors."""

    p95_ms: float | None = 100.0
    error_rate: float | None = 0.0

    def evaluate(self, *, requests: int, failures: int, failures_by_type: Mapping[str, int],
                 p95_ms: float | None, code_exceptions: int = 0) -> "GateResult":
        reasons = []
        if requests == 0:
            reasons.append("no requests were made")
        else:
            if self.p95_ms is not None and p95_ms is not None and p95_ms > self.p95_ms:
                reasons.append(f"p95 {p95_ms:g} ms > {self.p95_ms:g} ms")
            rate = failures / requests
            if self.error_rate is not None and rate > self.error_rate:
                top = ", ".join(f"{kind} {count}" for kind, count in Counter(failures_by_type).most_common(3))
                reasons.append(f"error rate {_percent(rate)} > {_percent(self.error_rate)} "
                               f"({failures} of {requests} requests failed" + (f": {top})" if top else ")"))
        if code_exceptions:
            reasons.append(f"{code_exceptions} exception(s) in the load test code (see the log)")
        return GateResult(passed=not reasons, reasons=reasons)

    def describe(self) -> str:
        p95 = "off" if self.p95_ms is None else f"{self.p95_ms:g} ms"
        rate = "off" if self.error_rate is None else _percent(self.error_rate)
        return f"p95 <= {p95}, error rate <= {rate}"


def _percent(share: float) -> str:
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str]

    def line(self, gates: Gates, load: dict | None = None) -> str:
        if self.passed:
            return f"quality gates passed ({gates.describe()})"
        during = f" (the machine during the run: {describe_load(load)})" if load else ""
        return "quality gate failed: " + "; ".join(self.reasons) + during


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU ticks of the machine (/proc/stat's first line): busy, steal and total."""
    busy: int
    steal: int
    total: int

    @classmethod
    def now(cls, stat_path: str = "/proc/stat") -> "CpuSample | None":
        try:
            with open(stat_path) as stat:
                fields = [int(v) for v in stat.readline().split()[1:9]]
        except (OSError, ValueError):
            return None  # not Linux: the load report says less
        user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
        return cls(busy=user + nice + system + irq + softirq, steal=steal, total=sum(fields))


def machine_load(start: CpuSample | None, end: CpuSample | None, load_average: float, cores: int) -> dict:
    """What the machine did during a run, so that a breached gate tells a slow machine (both cores
    busy, CPU stolen by the host) from a slow app."""
    load = {"load_average_1m": round(load_average, 2), "cores": cores}
    if start is not None and end is not None and end.total > start.total:
        span = end.total - start.total
        load["cpu_busy_percent"] = round(100 * (end.busy - start.busy) / span, 1)
        load["cpu_steal_percent"] = round(100 * (end.steal - start.steal) / span, 1)
    return load


def describe_load(load: dict) -> str:
    text = f"load average {load['load_average_1m']:g} on {load['cores']} core(s)"
    if "cpu_busy_percent" in load:
        text += f", CPU {load['cpu_busy_percent']:g} % busy, {load['cpu_steal_percent']:g} % stolen"
    return text


def timeline(start_second: int, requests_per_second: Mapping[int, int], failures_per_second: Mapping[int, int],
             users_per_second: Mapping[int, int]) -> list[dict]:
    """One row per second since `start_second` (epoch), gaps filled with zeros."""
    seconds = [*requests_per_second, *failures_per_second, *users_per_second]
    last = max(seconds, default=start_second)
    return [{"second": second - start_second,
             "requests": requests_per_second.get(second, 0),
             "failed_requests": failures_per_second.get(second, 0),
             "users_created": users_per_second.get(second, 0)}
            for second in range(start_second, last + 1)]


def summary(*, tally: Tally, gates: Gates, result: GateResult, requests: int, failures: int, p50_ms: float | None,
            p95_ms: float | None, started_at: float, ended_at: float, target: str | None,
            user_classes: list[str], requests_per_second: Mapping[int, int],
            failures_per_second: Mapping[int, int], arrival: ArrivalProfile | None = None,
            load: dict | None = None) -> dict:
    """The machine-readable record of one run (docs/loadtests.md describes each key)."""
    start_second = int(started_at)
    record = {
        "target": target,
        "user_classes": sorted(user_classes),
        "started_at": round(started_at, 3),
        "duration_s": round(ended_at - started_at, 3),
        "users_created": tally.users_created,
        "users_completed": tally.users_completed,
        "users_failed": tally.users_failed,
        "users_failed_by_type": dict(tally.users_failed_by_type.most_common()),
        "users_unfinished": tally.users_created - tally.users_completed - tally.users_failed,
        "requests": requests,
        "failed_requests": failures,
        "failed_requests_by_type": dict(tally.failed_requests_by_type.most_common()),
        "failure_samples": list(tally.failure_samples),
        "color_changes": tally.color_changes,
        "p50_ms": p50_ms,
        "p95_ms": p95_ms,
        "responses_by_replica": dict(sorted(tally.responses_by_replica.items())),
        "gates": {"passed": result.passed, "reasons": list(result.reasons),
                  "p95_ms_max": gates.p95_ms, "error_rate_max": gates.error_rate},
        "timeline": timeline(start_second, requests_per_second, failures_per_second,
                             tally.users_created_per_second),
        "machine": load or {},
    }
    if arrival is not None:
        def since_start(moment):
            return None if moment is None else round(moment - started_at, 3)
        record["arrival"] = {
            "rate": arrival.rate,
            "seconds": arrival.seconds,
            "expected_users": arrival.total_users,
            "first_user_s": since_start(tally.first_user_at),
            "last_user_s": since_start(tally.last_user_at),
        }
    return record
