"""webgatos_sessions_lost_total: the server-side count of color changes. A request that brings a
session cookie the replica's store does not know gets a new color and counts; a first visit (no
cookie) and a known session do not."""

from webgatos import metrics

from tests.unit.test_webgatos_app import COOKIE, make_client


def lost() -> float:
    return metrics.SESSIONS_LOST._value.get()  # the process's registry: compare before and after


def test_a_first_visit_and_a_known_session_lose_nothing():
    client = make_client()
    before = lost()
    first = client.get("/api/session").get_json()
    again = client.get("/api/session").get_json()
    assert first["new"] and not again["new"] and again["color"] == first["color"]
    assert lost() == before


def test_a_cookie_another_replica_issued_is_a_lost_session():
    """Two replicas with memory stores: the second does not know the first's session."""
    first_replica, second_replica = make_client(), make_client()
    first_replica.get("/api/session")
    cookie = first_replica.get_cookie(COOKIE).value
    second_replica.set_cookie(COOKIE, cookie)
    before = lost()
    answer = second_replica.get("/api/session").get_json()
    assert answer["new"] and lost() == before + 1
    assert 'webgatos_sessions_lost_total' in second_replica.get("/metrics").get_data(as_text=True)


def test_a_forged_cookie_is_a_lost_session_too():
    client = make_client()
    client.set_cookie(COOKIE, "not-a-session.bad-signature")
    before = lost()
    assert client.get("/").status_code == 200
    assert lost() == before + 1
