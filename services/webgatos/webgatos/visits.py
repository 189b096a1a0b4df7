"""What a session page does, shared by the page and the API: the fault switches first, then one
visit counted in the user's session (a color for a new one)."""

import functools
import hashlib
import time

from flask import Response, current_app, request, session

from webgatos import metrics
from webgatos.stores import SESSION_COOKIE_NAME, StoreUnavailable


def with_faults(view):
    """The fault switches in front of a session view: a delay, then maybe an error instead."""
    @functools.wraps(view)
    def faulted():
        delay, error_status = current_app.extensions["webgatos"]["faults"].draw()
        if delay:
            metrics.FAULTS_INJECTED.labels("delay").inc()
            time.sleep(delay)
        if error_status is not None:
            metrics.FAULTS_INJECTED.labels("error").inc()
            return Response(f"Injected fault ({error_status}).\n", status=error_status, mimetype="text/plain")
        return view()
    return faulted


def visit() -> dict:
    """Count this visit in the user's session, giving a color to a new session."""
    state = current_app.extensions["webgatos"]
    user = session._get_current_object()  # the session itself, not a lookup per access
    if getattr(user, "store_unavailable", False):
        raise StoreUnavailable("session store read failed")
    is_new = "color" not in user
    if is_new:
        user["color"] = state["colors"].next()
        metrics.SESSIONS_CREATED.inc()
        if SESSION_COOKIE_NAME in request.cookies:
            metrics.SESSIONS_LOST.inc()
    user["visits"] = visits = int(user.get("visits", 0)) + 1
    settings = state["settings"]
    return {
        "color": user["color"],
        "hostname": settings.replica_name,
        "ip": state["replica_ip"],
        "store": settings.session_store,
        "new": is_new,
        "visits": visits,
        "session_id_hash": hashlib.sha256(user.sid.encode()).hexdigest()[:12],
    }
