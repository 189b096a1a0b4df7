"""The rules both targets share, as plain functions: interval and count parsing, victim choice,
the safety refusals, and the round loop that kills, logs one line per kill and sums up."""

import json
import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from loadtests.durations import parse_seconds

DEFAULT_DENY_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "istio-system")
FORCE_FLAG = "--i-know-what-i-am-doing"


class Refusal(ValueError):
    """The tool will not run as asked; the message (one line) says why and what to do."""


class Abort(RuntimeError):
    """A target failed in a way more rounds will not fix; the run stops with a summary."""


# Parsing

def parse_duration(text: str, option: str = "--interval") -> float:
    """Seconds from `15s`, `1m`, `1m30s`, `500ms`, `2h` or plain seconds (`15`, `2.5`)
    (loadtests/durations.py). Refuses anything else and anything not positive."""
    try:
        seconds = parse_seconds(text)
    except ValueError:
        raise Refusal(f"{option}: cannot read {text!r}; use plain seconds or units like 15s, 1m, 1m30s, 500ms"
                      ) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise Refusal(f"{option} must be positive, got {text!r}")
    return seconds


@dataclass(frozen=True)
class Count:
    """How many of the candidates die per round: a fixed number, a percentage, or all."""
    mode: str  # "fixed" | "percent" | "all"
    value: float = 0

    def __str__(self) -> str:
        return {"fixed": f"{self.value:g}", "percent": f"{self.value:g}%", "all": "all"}[self.mode]

    def of(self, candidates: int) -> int:
        """Victims out of `candidates`; a percentage rounds up, so 50% of 3 is 2 and any
        percentage of at least one candidate is at least one victim."""
        if self.mode == "all":
            return candidates
        if self.mode == "percent":
            return min(candidates, math.ceil(candidates * self.value / 100))
        return min(candidates, int(self.value))


def parse_count(text: str) -> Count:
    """`one` (or `1`), a fixed number (`3`), a percentage (`30%`, in (0, 100]) or `all`."""
    raw = str(text).strip().lower()
    if raw == "all":
        return Count("all")
    if raw == "one":
        return Count("fixed", 1)
    if raw.endswith("%"):
        try:
            percent = float(raw[:-1])
        except ValueError:
            raise Refusal(f"--count: cannot read {text!r} as a percentage") from None
        if not 0 < percent <= 100:
            raise Refusal(f"--count percentage must be above 0% and at most 100%, got {text!r}")
        return Count("percent", percent)
    if not raw.isdigit():
        raise Refusal(f"--count: use one, a whole number, a percentage like 30% or all, not {text!r}")
    if int(raw) < 1:
        raise Refusal(f"--count must be at least 1, got {text!r}")
    return Count("fixed", int(raw))


# Safety

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_KEY = r"([a-z0-9A-Z.-]+/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?"
_LABEL_VALUE = r"([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?)?"
_VALUES = rf"\(\s*{_LABEL_VALUE}(\s*,\s*{_LABEL_VALUE})*\s*\)"
_POSITIVE_REQUIREMENTS = [
    re.compile(rf"{_LABEL_KEY}\s*==?\s*{_LABEL_VALUE}"),
    re.compile(rf"{_LABEL_KEY}\s+in\s+{_VALUES}"),
    re.compile(_LABEL_KEY),  # the label exists
]
_NEGATIVE_REQUIREMENTS = [
    re.compile(rf"{_LABEL_KEY}\s*!=\s*{_LABEL_VALUE}"),
    re.compile(rf"{_LABEL_KEY}\s+notin\s+{_VALUES}"),
    re.compile(rf"!\s*{_LABEL_KEY}"),
]


def split_selector(selector: str) -> list[str]:
    """The requirements of a label selector: commas split them, except inside `in (a, b)`."""
    requirements, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            requirements.append(current.strip())
            current = ""
        else:
            current += char
    requirements.append(current.strip())
    return requirements


def check_selector(selector: str | None) -> str:
    """Refuse an empty or malformed label selector, and one with only negative requirements
    (`app!=x` alone matches nearly every pod in the namespace). Returns it stripped."""
    selector = (selector or "").strip()
    if not selector:
        raise Refusal("--selector is required and must not be empty (for example app.kubernetes.io/name=webgatos)")
    positive = False
    for requirement in split_selector(selector):
        if any(pattern.fullmatch(requirement) for pattern in _POSITIVE_REQUIREMENTS):
            positive = True
        elif not any(pattern.fullmatch(requirement) for pattern in _NEGATIVE_REQUIREMENTS):
            raise Refusal(f"--selector: cannot read requirement {requirement!r} in {selector!r}")
    if not positive:
        raise Refusal(f"--selector {selector!r} only excludes pods; add a requirement such as KEY=VALUE")
    return selector


def check_namespace(namespace: str | None, deny: Iterable[str] = DEFAULT_DENY_NAMESPACES,
                    force: bool = False) -> str:
    """Refuse a missing or malformed namespace, and (unless forced) kube-system and the deny list."""
    namespace = (namespace or "").strip()
    if not namespace:
        raise Refusal("--namespace is required: chaos never picks a namespace for you")
    if not _NAMESPACE.fullmatch(namespace):
        raise Refusal(f"--namespace {namespace!r} is not a valid namespace name")
    denied = set(deny) | {"kube-system"}
    if namespace in denied and not force:
        # An entry no namespace could have (a control character, say) is shown escaped, on the one line.
        shown = ", ".join(name if name.isprintable() else repr(name) for name in sorted(denied))
        raise Refusal(f"refusing namespace {namespace!r}: it is on the deny list ({shown}); "
                      f"pass {FORCE_FLAG} to override")
    return namespace


# Choosing

@dataclass(frozen=True)
class Victim:
    """Something that can be killed: a pod or a lab replica. `details` go into the log line."""
    name: str
    details: dict = field(default_factory=dict, compare=False)


def choose_victims(candidates: Sequence[Victim], count: Count, rng: random.Random) -> list[Victim]:
    """`count` of the candidates, picked at random (candidates are sorted first, so a seeded
    generator gives the same picks from the same list whatever order it came in)."""
    ordered = sorted(candidates, key=lambda victim: victim.name)
    return sorted(rng.sample(ordered, count.of(len(ordered))), key=lambda victim: victim.name)


# Running

def utc_now() -> tuple[float, str]:
    epoch = time.time()
    return epoch, datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_line(event: str, **fields) -> str:
    """`TIME EVENT key=value ...`: one line, greppable, in the order given."""
    _, stamp = utc_now()
    return " ".join([stamp, event] + [f"{key}={value}" for key, value in fields.items() if value is not None])


@dataclass
class Plan:
    target: str
    description: str  # what will be killed, where, and how, in words
    signal: str       # what the victim receives first: SIGTERM or SIGKILL (one token, for log lines)
    interval: float
    count: Count
    rounds: int | None = None
    duration: float | None = None
    dry_run: bool = False

    def announce(self) -> str:
        if self.rounds is not None:
            end = f"{self.rounds} round(s)"
        elif self.duration is not None:
            end = f"for {self.duration:g}s"
        else:
            end = "until stopped"
        verb = "DRY RUN, would kill" if self.dry_run else "will kill"
        return (f"chaos {self.target}: {verb} {self.count} of {self.description} every {self.interval:g}s, "
                f"{end}; the first round comes after one interval; Ctrl-C stops cleanly")


# A kill returns one of these; "killed" is the only one that counts as a kill.
KILLED, GONE, FAILED, WOULD_KILL = "killed", "gone", "failed", "would-kill"


def run_rounds(plan: Plan, candidates: Callable[[], list[Victim]], kill: Callable[[Victim], str],
               stop: threading.Event, out: TextIO, rng: random.Random,
               on_idle: Callable[[], None] | None = None, idle_interval: float = 0.2) -> dict:
    """Kill on schedule until the rounds or the duration run out or `stop` is set; return the
    summary. Round k fires at start + k * interval (no drift from slow kills). `on_idle` runs
    while waiting (the local target escalates SIGTERM to SIGKILL there)."""
    started_epoch, started = utc_now()
    start = time.monotonic()
    end = start + plan.duration if plan.duration is not None else math.inf
    kills: list[dict] = []
    rounds_done = empty_rounds = 0
    stopped_by = error = None

    def emit(line: str) -> None:
        print(line, file=out, flush=True)

    while stopped_by is None:
        deadline = start + (rounds_done + 1) * plan.interval
        if plan.rounds is not None and rounds_done >= plan.rounds:
            stopped_by = "rounds"
            break
        if deadline > end:
            deadline, stopped_by = end, "duration"
        while not stop.is_set() and time.monotonic() < deadline:
            if on_idle is not None:
                on_idle()
            stop.wait(min(idle_interval, max(0.0, deadline - time.monotonic())))
        if stop.is_set():
            stopped_by = "signal"
            break
        if stopped_by == "duration":
            break
        rounds_done += 1
        try:
            victims = choose_victims(candidates(), plan.count, rng)
        except Abort as abort:
            stopped_by, error = "error", str(abort)
            emit(log_line("error", target=plan.target, round=rounds_done, reason=json.dumps(error)))
            break
        if not victims:
            empty_rounds += 1
            emit(log_line("no-candidates", target=plan.target, round=rounds_done))
        for victim in victims:
            if stop.is_set():  # Ctrl-C in the middle of a round: the kills so far stand, no more
                stopped_by = "signal"
                break
            try:
                result = WOULD_KILL if plan.dry_run else kill(victim)
            except Abort as abort:
                stopped_by, error = "error", str(abort)
                emit(log_line("error", target=plan.target, round=rounds_done, reason=json.dumps(error)))
                break
            epoch, stamp = utc_now()
            kills.append({"time": stamp, "epoch": round(epoch, 3), "round": rounds_done, "target": plan.target,
                          "victim": victim.name, "signal": plan.signal, "result": result, **victim.details})
            emit(log_line(result, target=plan.target, victim=victim.name, signal=plan.signal,
                          round=rounds_done, **victim.details))
    ended_epoch, ended = utc_now()
    summary = {
        "target": plan.target, "dry_run": plan.dry_run, "started": started, "ended": ended,
        "started_epoch": round(started_epoch, 3), "ended_epoch": round(ended_epoch, 3),
        "interval_seconds": plan.interval, "count": str(plan.count), "signal": plan.signal,
        "rounds": rounds_done, "empty_rounds": empty_rounds, "stopped_by": stopped_by, "error": error,
        "killed": sum(k["result"] == KILLED for k in kills),
        "would_kill": sum(k["result"] == WOULD_KILL for k in kills),
        "gone": sum(k["result"] == GONE for k in kills),
        "failed": sum(k["result"] == FAILED for k in kills),
        "kills": kills,
    }
    emit(log_line("summary", target=plan.target, rounds=rounds_done, killed=summary["killed"],
                  would_kill=summary["would_kill"] if plan.dry_run else None, gone=summary["gone"],
                  failed=summary["failed"], empty_rounds=empty_rounds, stopped_by=stopped_by))
    return summary


def write_summary(path: str | Path, summary: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=1) + "\n")
    tmp.replace(path)
