"""Durations on command lines, one grammar for the load tests and the chaos tool: plain seconds
(`90`, `2.5`) or numbers with units (`1h`, `2m`, `1m30s`, `500ms`).

Stand-alone on purpose (the standard library only): it ships with the rest of loadtests/ in the
Locust ConfigMap, and chaos/Dockerfile copies it into the chaos image; each caller bounds the
value and words the error its own way."""

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_seconds(text) -> float:
    """Seconds in `text` (a leading `-` makes them negative, for the caller to refuse); ValueError
    when it is neither plain seconds nor a run of number-and-unit parts."""
    raw = str(text).strip().lower()
    unsigned = raw.removeprefix("-")
    parts = _PART.findall(unsigned)
    if parts and "".join(number + unit for number, unit in parts) == unsigned:
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
        return -seconds if raw.startswith("-") else seconds
    return float(raw)
