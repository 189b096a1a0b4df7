"""The admin API: the fault switches at run time (`GET` and `PUT /admin/faults`).

Every request needs `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time, before
anything else is looked at (its body included). Without ADMIN_TOKEN the admin API is off: every
request is a 403. A missing or wrong credential is a 401.
"""

import hmac

from flask import Blueprint, Response, current_app, jsonify, request

from webgatos.faults import EXPECTED_BODY, FaultInputError
from webgatos.jsonbody import JsonBodyError, parse_json_body, shown
from webgatos.requestbody import BodyError, read_body

bp = Blueprint("admin", __name__, url_prefix="/admin")
ADMIN_OFF = "The admin API is off: this replica has no ADMIN_TOKEN.\n"
CREDENTIAL_NEEDED = "The admin API needs the header Authorization: Bearer <ADMIN_TOKEN>.\n"


@bp.before_request
def require_the_token():
    token = current_app.extensions["webgatos"]["settings"].admin_token
    if token is None:
        return Response(ADMIN_OFF, status=403, mimetype="text/plain")
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    # Header values arrive as Latin-1 text (WSGI): as bytes, any of them compares.
    if scheme.lower() != "bearer" or not hmac.compare_digest(credential.strip().encode("latin-1", "replace"),
                                                             token.encode()):
        return Response(CREDENTIAL_NEEDED, status=401, mimetype="text/plain",
                        headers={"WWW-Authenticate": 'Bearer realm="webgatos admin"'})
    return None


@bp.get("/faults")
def get_faults():
    return jsonify(current_app.extensions["webgatos"]["faults"].snapshot())


@bp.put("/faults")
def put_faults():
    if not request.is_json:
        given = f", not {shown(request.mimetype)}" if request.mimetype else ""
        return jsonify({"error": f"Content-Type must be application/json{given}: send {EXPECTED_BODY}"}), 400
    try:
        return jsonify(current_app.extensions["webgatos"]["faults"].update(parse_json_body(read_body())))
    except (BodyError, JsonBodyError, FaultInputError) as error:
        return jsonify({"error": str(error)}), 400
