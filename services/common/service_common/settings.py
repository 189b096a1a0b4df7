"""Reading one service's environment: values with bounds, and a one-line error naming the
variable. Each service's settings module holds its variables; this holds how they are read."""

import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """A configuration variable has a bad value; str() is the one-line message."""


class EnvReader:
    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def raw(self, name: str) -> str | None:
        value = self.env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:  # also refuses nan
            raise SettingsError(f"{name}={raw!r} is not valid: use a number from {low:g} to {high:g}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        if not re.fullmatch(r"\d+", raw) or not low <= int(raw) <= high:
            raise SettingsError(f"{name}={raw!r} is not valid: use a whole number from {low} to {high}")
        return int(raw)


@dataclass(frozen=True)
class ServerSettings:
    """The settings every service's gunicorn reads; each service's Settings extends these."""
    port: int = 8080
    shutdown_drain_seconds: float = 5.0
    workers: int = 1
    threads: int = 4
    prometheus_multiproc_dir: str | None = None

    @classmethod
    def server_values(cls, reader: EnvReader) -> dict:
        """PORT, SHUTDOWN_DRAIN_SECONDS, WEB_CONCURRENCY, GUNICORN_THREADS, PROMETHEUS_MULTIPROC_DIR."""
        return {"port": reader.integer("PORT", cls.port, 1, 65535),
                "shutdown_drain_seconds": reader.number("SHUTDOWN_DRAIN_SECONDS", cls.shutdown_drain_seconds,
                                                        0.0, 300.0),
                "workers": reader.integer("WEB_CONCURRENCY", cls.workers, 1, 64),
                "threads": reader.integer("GUNICORN_THREADS", cls.threads, 1, 256),
                "prometheus_multiproc_dir": reader.raw("PROMETHEUS_MULTIPROC_DIR")}
