"""A tiny HTTP client for the integration and e2e tests: one cookie jar, bounded timeouts."""

import time
from pathlib import Path

import requests

COOKIE = "webgatos_session"
SERVICES = Path(__file__).resolve().parents[2] / "services"
WEBGATOS_CONF = SERVICES / "webgatos" / "gunicorn.conf.py"
SQRT_CONF = SERVICES / "sqrt" / "gunicorn.conf.py"


class Browser:
    """One user: a cookie jar shared by every request, like a browser tab."""

    def __init__(self, timeout: float = 10.0):
        self.http = requests.Session()
        self.timeout = timeout

    def get(self, url: str, path: str = "/api/session") -> requests.Response:
        return self.http.get(url + path, timeout=self.timeout)

    def visit(self, url: str) -> dict:
        response = self.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code} {response.text!r}"
        return response.json()

    @property
    def session_id(self) -> str:
        """The opaque session id inside the signed cookie (`<id>.<signature>`)."""
        return self.http.cookies[COOKIE].rsplit(".", 1)[0]


def timed_get(url: str, timeout: float = 10.0) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=timeout)
    return response, time.monotonic() - started
