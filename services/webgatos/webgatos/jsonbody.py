"""Strict, bounded JSON request bodies: anything but plain, shallow UTF-8 JSON is a JsonBodyError
whose message is the one-line reason a 400 carries.

Python's json parser recurses once per nesting level, so a deep body (`[` x 5000) would exhaust the
recursion limit inside it. The nesting is therefore measured first, by an iterative scan of the raw
text, and the parser only ever sees bodies at most MAX_DEPTH levels deep. The body's size is bounded
before that by Flask's MAX_CONTENT_LENGTH (a 413).
"""

import json
import math
import reprlib

MAX_DEPTH = 32
MAX_NUMBER_LENGTH = 100  # characters in one number literal: no setting needs more, and int() fails past 4300 digits

_shown = reprlib.Repr()
_shown.maxstring = _shown.maxother = 40


def shown(value) -> str:
    """A short repr of a value taken from a body, for error messages: at most 60 characters."""
    text = _shown.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class JsonBodyError(ValueError):
    """A request body that is not acceptable JSON; str() is the one-line reason."""


def parse_json_body(raw: bytes):
    """The JSON value of `raw`, or JsonBodyError: not UTF-8, nested deeper than MAX_DEPTH, not JSON,
    NaN or Infinity, a number out of range or longer than MAX_NUMBER_LENGTH, a key twice in an object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JsonBodyError(f"body is not valid UTF-8 (byte {error.start})") from None
    check_depth(text)
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=_integer, parse_float=_number,
                          object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise JsonBodyError(f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
                            ) from None


def check_depth(text: str) -> None:
    """Raise JsonBodyError when arrays and objects nest deeper than MAX_DEPTH (brackets inside
    strings do not count). One pass, no recursion, on text of any shape."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonBodyError(f"body nests arrays or objects deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _refuse_constant(name: str):
    raise JsonBodyError(f"body is not valid JSON: {name} is not a JSON number")


def _check_length(literal: str) -> None:
    if len(literal) > MAX_NUMBER_LENGTH:
        raise JsonBodyError(f"body has a number longer than {MAX_NUMBER_LENGTH} characters")


def _integer(literal: str) -> int:
    _check_length(literal)
    return int(literal)


def _number(literal: str) -> float:
    _check_length(literal)
    value = float(literal)
    if not math.isfinite(value):
        raise JsonBodyError(f"body has a number out of range: {literal}")
    return value


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise JsonBodyError(f"body has the key {shown(key)} twice in one object")
        result[key] = value
    return result
