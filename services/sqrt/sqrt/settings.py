"""The one place that reads sqrt's environment. A bad value raises SettingsError (one line)."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_ITERATIONS = 1_000_000


class SettingsError(ValueError):
    """A configuration variable has a bad value; str() is the one-line message."""


@dataclass(frozen=True)
class Settings:
    max_iterations: int = 10_000_000
    port: int = 8080
    workers: int = 1
    threads: int = 4
    shutdown_drain_seconds: float = 5.0
    prometheus_multiproc_dir: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        return cls(
            max_iterations=_integer(env, "SQRT_MAX_ITERATIONS", cls.max_iterations, 1, 1_000_000_000),
            port=_integer(env, "PORT", cls.port, 1, 65535),
            workers=_integer(env, "WEB_CONCURRENCY", cls.workers, 1, 64),
            threads=_integer(env, "GUNICORN_THREADS", cls.threads, 1, 256),
            shutdown_drain_seconds=_number(env, "SHUTDOWN_DRAIN_SECONDS", cls.shutdown_drain_seconds, 0.0, 300.0),
            prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        )


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
        raise SettingsError(f"{name}={raw!r} is not valid: use a whole number from {low} to {high}")
    return int(raw)


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SettingsError(f"{name}={raw!r} is not valid: use a number from {low:g} to {high:g}")
    return value
