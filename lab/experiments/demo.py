"""The talk's load and chaos, as every substrate runs them: Locust's arrival profile (the talk's
artillery script), the chaos interval scaled to short runs, and the bounds of a run's length. The
cases themselves are data (cases.toml); the runner is runner.py."""

import sys
from pathlib import Path

from lab.host.paths import REPO_ROOT, VENV_BIN
from lab.workloads.topology import LabInputError

LOCUSTFILE = REPO_ROOT / "loadtests" / "arrival.py"  # the talk's arrival profile (ArrivalUser)
ARRIVAL_RATE = 10.0  # new users per second, as in the talk (1200 users in 120 s)
PAGE_LOADS = 5  # each user reloads the page: a lost session shows as a color change
DRAIN_SECONDS = 10.0  # after the last arrival, how long users still visiting may take
TALK_CHAOS_INTERVAL = 15.0
MIN_SECONDS, MAX_SECONDS = 8.0, 3600.0  # a chaos run must fit one kill
MIN_CHAOS_INTERVAL = 7.5  # about twice a killed replica's way back (restart delay, boot, health check)


def chaos_interval(seconds: float) -> float:
    """The talk's 15 s when the run is long enough for a few kills; shorter runs scale it down
    (to no less than MIN_CHAOS_INTERVAL, so a victim is back before the next kill) so that every chaos
    case still sees a kill, two from 15 s on. The first kill comes one interval in."""
    if seconds >= 3 * TALK_CHAOS_INTERVAL:
        return TALK_CHAOS_INTERVAL
    return max(MIN_CHAOS_INTERVAL, seconds / 3)


def parse_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:  # also refuses nan
        raise LabInputError(f"bad DEMO_SECONDS {text!r}: seconds per case, from {MIN_SECONDS:g} to {MAX_SECONDS:g}")
    return seconds


def locust_argv(url: str, seconds: float, summary_path: Path, page_loads: int = PAGE_LOADS) -> list[str]:
    # Quality gates off: the demo measures, it does not pass or fail a run (the facts do).
    return [str(VENV_BIN / "locust"), "-f", str(LOCUSTFILE), "--headless", "--host", url,
            "--arrival-rate", f"{ARRIVAL_RATE:g}", "--arrival-seconds", f"{seconds:g}",
            "--arrival-drain-seconds", f"{DRAIN_SECONDS:g}", "--page-loads", str(page_loads),
            "--gate-p95-ms", "off", "--gate-error-rate", "off", "--summary-json", str(summary_path),
            "--only-summary", "--loglevel", "WARNING"]


def chaos_argv(state_path: Path, interval: float, seconds: float, signal_name: str,
               summary_path: Path) -> list[str]:
    """The chaos tool against the lab's node (its state file names the replicas)."""
    return [sys.executable, "-m", "chaos", "local", "--state", str(state_path), "--interval", f"{interval:g}s",
            "--duration", f"{seconds:g}s", "--signal", signal_name, "--summary-json", str(summary_path)]


def load_notes(seconds: float, signal_name: str) -> list[str]:
    """How the load and the chaos ran, for the report's header."""
    interval = chaos_interval(seconds)
    return [f"Locust: the talk's arrival profile for {seconds:g} s per case ({LOCUSTFILE.relative_to(REPO_ROOT)})",
            f"chaos: {signal_name} to a random replica every {interval:g} s"
            + ("" if interval == TALK_CHAOS_INTERVAL else
               f" (the talk's {TALK_CHAOS_INTERVAL:g} s scaled down so short runs still see kills;"
               f" DEMO_SECONDS={3 * TALK_CHAOS_INTERVAL:g} or more keeps it)")]
