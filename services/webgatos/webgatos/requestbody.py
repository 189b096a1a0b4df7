"""Request bodies read whole, under one size limit whatever their framing.

Content-Length, chunked: a body over MAX_BODY_BYTES is a 413, one that ends before its declared
length or whose chunks are malformed is a BodyError (a 400), and nothing is ever cut to the limit
and then accepted (issue 37: a chunked body was, through the framework's stream). The body is
read from the server's own input, at most one byte past the limit.
"""

from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

MAX_BODY_BYTES = 16 * 1024  # the admin API's JSON is a few dozen bytes


class BodyError(ValueError):
    """A body the server could not deliver whole; str() is the one-line reason."""


def read_body(limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body of the current request, RequestEntityTooLarge over `limit`, or BodyError."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestEntityTooLarge()
    try:
        body = request.environ["wsgi.input"].read(limit + 1)
    except Exception as error:  # the server's own, e.g. gunicorn's InvalidChunkSize or NoMoreData
        raise BodyError(f"cannot read the body: {type(error).__name__}") from None
    if len(body) > limit:
        raise RequestEntityTooLarge()
    if declared is not None and len(body) < declared:
        raise BodyError(f"body cut short: {len(body)} of the {declared} bytes in Content-Length")
    return body
