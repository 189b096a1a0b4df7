"""Probes and metrics: `/healthz` (the process), `/readyz` (draining? the store?), `/metrics`.
None of them touches a session, and the fault switches never reach them."""

import logging

from flask import Blueprint, Response, current_app

from webgatos import metrics
from webgatos.stores import StoreUnavailable

log = logging.getLogger(__name__)
bp = Blueprint("probes", __name__)


@bp.get("/healthz")
def healthz():
    return Response("ok\n", mimetype="text/plain")


@bp.get("/readyz")
def readyz():
    if current_app.extensions["webgatos"]["lifecycle"].draining.is_set():
        return Response("draining\n", status=503, mimetype="text/plain")
    try:
        current_app.session_interface.ping()
    except StoreUnavailable as error:
        log.warning("readyz: session store unavailable: %s", error)
        return Response("session store unavailable\n", status=503, mimetype="text/plain")
    return Response("ready\n", mimetype="text/plain")


@bp.get("/metrics")
def prometheus_metrics():
    body, content_type = metrics.HTTP.exposition(current_app.extensions["webgatos"]["settings"]
                                                 .prometheus_multiproc_dir)
    return Response(body, content_type=content_type)
