"""Answers for errors raised anywhere in the app: short plain text, never a traceback."""

import logging

from flask import Flask, Response

from webgatos.requestbody import MAX_BODY_BYTES
from webgatos.stores import STORE_UNAVAILABLE_MESSAGE, StoreUnavailable

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.errorhandler(StoreUnavailable)
    def store_unavailable(error):
        log.warning("session store unavailable: %s", error)  # the client gets a generic 503; the cause is here
        return Response(STORE_UNAVAILABLE_MESSAGE, status=503, mimetype="text/plain", headers={"Retry-After": "1"})

    @app.errorhandler(413)
    def body_too_large(error):
        return Response(f"Request body over {MAX_BODY_BYTES} bytes.\n", status=413, mimetype="text/plain")

    @app.errorhandler(500)
    def internal_error(error):
        return Response("Internal error.\n", status=500, mimetype="text/plain")
