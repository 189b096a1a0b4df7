"""The JSON API: `GET /api/session`, the session as data."""

import json

from flask import Blueprint, Response

from webgatos.visits import visit, with_faults

bp = Blueprint("api", __name__, url_prefix="/api")
# jsonify's compact output, from one encoder: jsonify builds a new one for every response.
API_JSON = json.JSONEncoder(separators=(",", ":"))


@bp.get("/session")
@with_faults
def get_session():
    return Response(API_JSON.encode(visit()) + "\n", mimetype="application/json")
