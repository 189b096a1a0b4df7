"""service_common/workers.py's test for a complete request head (the worker itself runs under real
gunicorn in tests/integration/test_hostile_connections.py and every other integration test)."""

import pytest
from service_common.workers import HEAD_TIMED_OUT, HEAD_TOO_LARGE, head_complete


@pytest.mark.parametrize(("data", "complete"), [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\n\r\n", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody bytes", True),
    (b"GET / HTTP/1.1\r\nHost: x\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r", False),
    (b"", False),
    (b"\r\n\r\n", False),  # empty lines before a request line are not a head
    (b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n", False),
    (b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", True),
])
def test_a_head_is_complete_at_its_blank_line(data, complete):
    assert head_complete(data) is complete


def test_a_head_sent_a_byte_at_a_time_is_found_with_the_scanned_offset():
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100 + b"\r\n\r\n"
    seen = [head_complete(head[:end], scanned=end - 1) for end in range(1, len(head) + 1)]
    assert seen == [False] * (len(head) - 1) + [True]


@pytest.mark.parametrize("answer", [HEAD_TOO_LARGE, HEAD_TIMED_OUT])
def test_the_refusals_are_whole_http_responses_that_close(answer):
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 4") and b"Connection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head
