"""Fault switches: a share of app requests answered with an error, and a delay added to each.

Set from the environment at start-up and changed at run time through PUT /admin/faults. They are
per process; a replica runs one worker process, so they are per replica.
"""

import random
import threading
from dataclasses import asdict, dataclass

from webgatos.jsonbody import shown

LIMITS = {"error_rate": (0.0, 1.0), "error_status": (500, 599), "delay_seconds": (0.0, 60.0)}
EXPECTED_BODY = f"a JSON object with any of: {', '.join(LIMITS)}"


class FaultInputError(ValueError):
    """A PUT /admin/faults body that cannot be applied; str() is the reason."""


@dataclass
class FaultState:
    error_rate: float = 0.0
    error_status: int = 503
    delay_seconds: float = 0.0


class Faults:
    def __init__(self, error_rate: float, error_status: int, delay_seconds: float):
        self._state = FaultState(error_rate, error_status, delay_seconds)
        self._lock = threading.Lock()
        self._active = self._is_active()

    def _is_active(self) -> bool:
        return self._state.error_rate > 0 or self._state.delay_seconds > 0

    def snapshot(self) -> dict:
        with self._lock:
            return asdict(self._state)

    def update(self, changes) -> dict:
        """Apply a JSON object with any of the keys; all-or-nothing."""
        if not isinstance(changes, dict) or not changes:
            raise FaultInputError(f"body must be {EXPECTED_BODY}")
        unknown = sorted(set(changes) - set(LIMITS))
        if unknown:
            names = ", ".join(shown(key) for key in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
            raise FaultInputError(f"unknown key(s) {names}: use any of {', '.join(LIMITS)}")
        checked = {}
        for key, value in changes.items():
            low, high = LIMITS[key]
            wants_int = key == "error_status"
            valid_type = isinstance(value, int) if wants_int else isinstance(value, int | float)
            if isinstance(value, bool) or not valid_type or not low <= value <= high:
                kind = "an integer" if wants_int else "a number"
                raise FaultInputError(f"{key}={shown(value)} is not valid: use {kind} from {low:g} to {high:g}")
            checked[key] = value if wants_int else float(value)
        with self._lock:
            for key, value in checked.items():
                setattr(self._state, key, value)
            self._active = self._is_active()
            return asdict(self._state)

    def draw(self) -> tuple[float, int | None]:
        """(delay to add, error status to answer or None) for one request."""
        if not self._active:  # every request asks: switched off, it takes no lock
            return 0.0, None
        with self._lock:
            state = FaultState(**asdict(self._state))
        failed = state.error_rate > 0 and random.random() < state.error_rate
        return state.delay_seconds, (state.error_status if failed else None)
