"""Colors handed out round-robin per process, as in the talk's original app."""

import itertools
import random
import threading

PALETTE = (
    "#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4",
    "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990", "#dcbeff",
    "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000", "#000075",
)


class ColorWheel:
    """Round-robin over PALETTE, from a random start so that two replicas rarely begin alike."""

    def __init__(self, palette: tuple[str, ...] = PALETTE, start: int | None = None):
        self.palette = palette
        self._counter = itertools.count(random.randrange(len(palette)) if start is None else start)
        self._lock = threading.Lock()

    def next(self) -> str:
        with self._lock:
            return self.palette[next(self._counter) % len(self.palette)]


def text_color(background: str) -> str:
    """Black or white, whichever contrasts more with `background` (#rrggbb), per WCAG luminance."""
    channels = [int(background[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    # Contrast with black is (L + 0.05) / 0.05, with white 1.05 / (L + 0.05); equal at L ~ 0.179.
    return "#000000" if luminance > 0.179 else "#ffffff"
