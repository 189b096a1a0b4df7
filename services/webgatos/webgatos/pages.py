"""The page: `GET /`, the user's color as the background, the replica, a number and the cat."""

import random
import secrets

from flask import Blueprint, Response, render_template

from webgatos.colors import text_color
from webgatos.visits import visit, with_faults

bp = Blueprint("pages", __name__)


@bp.get("/")
@with_faults
def index():
    data = visit()
    nonce = secrets.token_urlsafe(16)
    html = render_template("index.html", **data, text_color=text_color(data["color"]),
                           number=random.randint(0, 999_999), nonce=nonce)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; img-src 'self'; style-src 'nonce-{nonce}'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return response
