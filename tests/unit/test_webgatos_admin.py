"""webgatos's admin API (webgatos/admin.py) through Flask's test client: nothing without the bearer
token, 403 for everyone when the replica has none, and a refused request changes nothing (its body
is not even read)."""

import pytest
from webgatos import Settings, create_app

TOKEN = "unit-admin-token-0123456789"
FAULTS_OFF = {"error_rate": 0.0, "error_status": 503, "delay_seconds": 0.0}


def make_app(admin_token: str | None = TOKEN):
    return create_app(Settings(replica_name="webgatos-test", secret_key="k", admin_token=admin_token))


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", f"Bearer {TOKEN}x",
    f"Bearer {TOKEN.upper()}", f"{TOKEN}", "Bearer \u00e9" + TOKEN[1:],
])
def test_without_the_token_every_admin_request_is_a_401_and_changes_nothing(authorization):
    app = make_app()
    client = app.test_client()
    headers = {} if authorization is None else {"Authorization": authorization}
    for method, body in (("GET", None), ("PUT", {"error_rate": 1.0})):
        response = client.open("/admin/faults", method=method, json=body, headers=headers)
        assert response.status_code == 401, (method, authorization)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in response.get_data(as_text=True)
    assert app.extensions["webgatos"]["faults"].snapshot() == FAULTS_OFF
    assert client.get("/api/session").status_code == 200


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_token_opens_the_admin_api(scheme):
    client = make_app().test_client()
    headers = {"Authorization": f"{scheme} {TOKEN}"}
    assert client.get("/admin/faults", headers=headers).get_json() == FAULTS_OFF
    response = client.put("/admin/faults", json={"error_rate": 1.0, "error_status": 502}, headers=headers)
    assert response.status_code == 200 and response.get_json()["error_rate"] == 1.0
    assert client.get("/api/session").status_code == 502


def test_a_replica_without_a_token_has_its_admin_api_off():
    app = make_app(admin_token=None)
    client = app.test_client()
    for headers in ({}, {"Authorization": "Bearer anything-at-all-long-enough"}):
        assert client.get("/admin/faults", headers=headers).status_code == 403
        response = client.put("/admin/faults", json={"error_rate": 1.0}, headers=headers)
        assert response.status_code == 403 and "no ADMIN_TOKEN" in response.get_data(as_text=True)
    assert app.extensions["webgatos"]["faults"].snapshot() == FAULTS_OFF


def test_a_refused_request_is_answered_before_its_body_is_read():
    """The check comes first: an oversized or broken body without the token is a 401, not a 413 or 400."""
    client = make_app().test_client()
    assert client.put("/admin/faults", data=b" " * 100_000, content_type="application/json").status_code == 401
    assert client.put("/admin/faults", data=b"[" * 5000, content_type="application/json").status_code == 401


def test_the_admin_check_leaves_the_other_routes_alone():
    client = make_app().test_client()
    for path in ("/", "/api/session", "/healthz", "/readyz", "/metrics", "/static/cat.svg"):
        assert client.get(path).status_code == 200, path
