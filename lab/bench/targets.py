"""The benchmark's targets, read from targets.toml (data beside the code that judges it)."""

import tomllib
from dataclasses import dataclass
from pathlib import Path

TARGETS_FILE = Path(__file__).resolve().parent / "targets.toml"


@dataclass(frozen=True)
class StoreTargets:
    """What webgatos with one session store must reach, against the Flask hello of the same rounds."""
    share_of_flask_hello_at_least: float
    rss_mib_at_most: float
    ready_vs_flask_hello_at_most: float


@dataclass(frozen=True)
class PerRequestTargets:
    p95_ms_below: float
    stores: dict[str, StoreTargets]


def load(path: Path = TARGETS_FILE) -> PerRequestTargets:
    section = tomllib.loads(path.read_text())["per_request"]
    return PerRequestTargets(p95_ms_below=float(section["p95_ms_below"]),
                             stores={store: StoreTargets(**values) for store, values in section["stores"].items()})


def tracing_cpu_overhead_at_most(path: Path = TARGETS_FILE) -> float:
    return float(tomllib.loads(path.read_text())["tracing"]["cpu_overhead_at_most"])
