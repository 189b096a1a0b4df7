"""Hostile requests against sqrt through Flask's test client: `?iterations=` anything is a 200 `OK!`
or a 400 whose body says why, any other request is below 500, and nothing logs a traceback."""

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqrt import Settings, create_app

from tests import hostile_input as hostile
from tests.conftest import fuzz_examples

MAX_ITERATIONS = 1000  # small, so that an accepted N costs nothing; a missing N (1,000,000) is then a 400

iterations_values = st.one_of(
    hostile.ANY_TEXT,
    st.integers().map(str),
    st.integers(0, MAX_ITERATIONS).map(str),
    st.floats().map(str),
    st.sampled_from(["", " ", "+5", "-0", "0x10", "1_000", "1e3", "١٢", "٣", "１２", "²", "7\x00", "9" * 13, "%ff",
                     "0" * 12, "0" * 13, "nan", "inf", "true", "[]", "null"]),
)


@pytest.fixture(scope="module")
def client():
    return create_app(Settings(max_iterations=MAX_ITERATIONS)).test_client()


@pytest.fixture(scope="module")
def app_log():
    """What the app logs: Flask's app logger ("sqrt.app", where an unhandled error goes) is under "sqrt"."""
    recorder = hostile.LogRecorder()
    logger = logging.getLogger("sqrt")
    logger.addHandler(recorder)
    yield recorder
    logger.removeHandler(recorder)


@settings(max_examples=fuzz_examples(3))
@given(values=st.lists(iterations_values, max_size=3), extra=hostile.query_strings, encoded=st.booleans())
def test_iterations_is_200_or_400_with_a_reason(client, app_log, values, extra, encoded):
    app_log.lines.clear()
    if encoded:  # what a browser sends: every value percent-encoded
        query = [("iterations", value) for value in values]
    else:  # raw, as an attacker may type it
        query = "&".join([*(f"iterations={value}" for value in values), extra])
    response = client.get("/", query_string=query)
    text = response.get_data(as_text=True)
    if response.status_code == 200:
        assert text == "OK!"
    else:
        assert response.status_code == 400, text[:300]
        assert text.startswith("iterations=") and ("is not valid" in text or "above the maximum" in text), text[:300]
    assert "Traceback" not in app_log.text()


@settings(max_examples=fuzz_examples(1))
@given(method=hostile.methods, path=hostile.paths, query=hostile.query_strings, headers=hostile.headers,
       body=hostile.bodies, content_type=hostile.content_types)
def test_any_request_is_below_500_without_traceback(client, app_log, method, path, query, headers, body,
                                                    content_type):
    app_log.lines.clear()
    target = f"http://localhost{path}" + (f"?{query}" if query else "")  # `//x` stays a path, not a host
    response = client.open(target, method=method, headers=headers, data=body, content_type=content_type)
    assert response.status_code < 500, response.get_data(as_text=True)[:300]
    assert "Traceback" not in app_log.text()
