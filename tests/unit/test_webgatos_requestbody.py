"""webgatos/requestbody.py: one size limit whatever the framing, and a 400 for a body that does not
arrive whole. The framing itself is the server's (gunicorn's reader, on the wire in
tests/integration/test_hostile_connections.py); here the server's input is a stream that ends,
raises, or holds more than it should."""

import io

import pytest
from flask import Flask, request
from webgatos.requestbody import MAX_BODY_BYTES, BodyError, read_body
from werkzeug.exceptions import RequestEntityTooLarge

app = Flask(__name__)


class BrokenStream(io.RawIOBase):
    """The server's input when its chunked decoder meets a bad chunk."""

    def read(self, size=-1):
        raise ValueError("invalid chunk size")


def read_with(stream, content_length: int | None):
    with app.test_request_context("/", method="PUT"):
        request.environ["wsgi.input"] = stream
        request.environ.pop("CONTENT_LENGTH", None)
        if content_length is not None:
            request.environ["CONTENT_LENGTH"] = str(content_length)
        return read_body()


@pytest.mark.parametrize("size", [0, 1, MAX_BODY_BYTES])
@pytest.mark.parametrize("declared", [True, False], ids=["Content-Length", "no length (chunked)"])
def test_a_whole_body_within_the_limit_is_read_whole(size, declared):
    body = b"x" * size
    assert read_with(io.BytesIO(body), size if declared else None) == body


@pytest.mark.parametrize("declared", [None, MAX_BODY_BYTES + 1, 10**12], ids=["chunked", "one over", "huge"])
def test_over_the_limit_is_a_413_never_the_first_bytes(declared):
    with pytest.raises(RequestEntityTooLarge):
        read_with(io.BytesIO(b"x" * (MAX_BODY_BYTES + 1)), declared)


def test_a_huge_declared_length_is_refused_before_reading():
    stream = io.BytesIO(b"{}")
    with pytest.raises(RequestEntityTooLarge):
        read_with(stream, MAX_BODY_BYTES + 1)
    assert stream.tell() == 0


def test_fewer_bytes_than_declared_is_a_400_with_the_counts():
    with pytest.raises(BodyError, match="body cut short: 18 of the 100 bytes"):
        read_with(io.BytesIO(b'{"error_rate":0.5}'), 100)


def test_a_stream_the_server_cannot_decode_is_a_400_naming_the_error():
    with pytest.raises(BodyError, match="cannot read the body: ValueError"):
        read_with(BrokenStream(), None)
