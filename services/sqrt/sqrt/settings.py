"""The one place that reads sqrt's environment. A bad value raises SettingsError (one line)."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

from service_common.settings import EnvReader, ServerSettings, SettingsError

__all__ = ["DEFAULT_ITERATIONS", "Settings", "SettingsError"]

DEFAULT_ITERATIONS = 1_000_000


@dataclass(frozen=True)
class Settings(ServerSettings):
    max_iterations: int = 10_000_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        reader = EnvReader(env)
        return cls(
            max_iterations=reader.integer("SQRT_MAX_ITERATIONS", cls.max_iterations, 1, 1_000_000_000),
            **cls.server_values(reader),
        )
