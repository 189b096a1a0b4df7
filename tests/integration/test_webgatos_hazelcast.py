"""webgatos on a real two-member Hazelcast cluster: sessions persist, expire with the TTL, survive
the loss of one member (backup count 1); losing the whole cluster is a fast 503 that heals by itself."""

import signal
import uuid

import hazelcast
import pytest

from lab.host.procs import LOOPBACK, free_port, http_status, wait_until
from tests.conftest import require_hazelcast
from tests.integration.webgatos_client import WEBGATOS_CONF, Browser, timed_get

pytestmark = pytest.mark.hazelcast
SESSIONS_MAP = "webgatos-sessions"


@pytest.fixture
def hazelcast_client(hazelcast_members):
    members, cluster_name = hazelcast_members
    client = hazelcast.HazelcastClient(cluster_members=members.split(","), cluster_name=cluster_name,
                                       cluster_connect_timeout=30, invocation_timeout=10)
    yield client
    client.shutdown()


def test_session_lives_in_hazelcast_and_outlives_the_replica(start_webgatos, procs, hazelcast_client):
    [first_url] = start_webgatos("hazelcast", replicas=1)
    browser = Browser()
    created = browser.visit(first_url)
    assert created["store"] == "hazelcast" and created["new"] is True
    sessions = hazelcast_client.get_map(SESSIONS_MAP).blocking()
    assert sessions.contains_key(f"session:{browser.session_id}")
    procs.stop_all()
    [second_url] = start_webgatos("hazelcast", replicas=1)
    again = browser.visit(second_url)
    assert (again["new"], again["color"], again["visits"]) == (False, created["color"], 2)


def test_session_expires_with_the_ttl(start_webgatos, hazelcast_client):
    [url] = start_webgatos("hazelcast", replicas=1, SESSION_TTL_SECONDS="5")
    browser = Browser()
    created = browser.visit(url)
    sessions = hazelcast_client.get_map(SESSIONS_MAP).blocking()
    key = f"session:{browser.session_id}"
    assert 0 < sessions.get_entry_view(key).ttl <= 5000  # milliseconds
    wait_until(lambda: not sessions.contains_key(key), timeout=20, what=f"{key} to expire")
    after = browser.visit(url)
    assert after["new"] is True and after["session_id_hash"] != created["session_id_hash"]


def test_first_sessions_after_start_up_are_stored_at_once(start_webgatos, hazelcast_client):
    """A fresh replica's first writes land in both members' partitions before its client has
    connected to every member. With backup acks sent to the client such a write waited out
    Hazelcast's 5 s backup timeout; store calls are bounded by STORE_TIMEOUT_SECONDS, so that
    would now show as a 503 here."""
    [url] = start_webgatos("hazelcast", replicas=1)
    browsers = [Browser() for _ in range(20)]
    for browser in browsers:
        browser.visit(url)
    sessions = hazelcast_client.get_map(SESSIONS_MAP).blocking()
    assert all(sessions.contains_key(f"session:{browser.session_id}") for browser in browsers)


def test_session_survives_one_member_loss_and_cluster_loss_is_a_fast_503_that_heals(procs):
    require_hazelcast()
    ports = [free_port(), free_port()]
    cluster_name = f"loss-{uuid.uuid4().hex[:8]}"
    members = procs.hazelcast_cluster(ports, cluster_name)
    port = free_port()
    procs.gunicorn("webgatos:create_app()", port,
                   {"SESSION_STORE": "hazelcast", "HAZELCAST_MEMBERS": ",".join(f"{LOOPBACK}:{p}" for p in ports),
                    "HAZELCAST_CLUSTER_NAME": cluster_name, "SECRET_KEY": "k", "REPLICA_NAME": "webgatos-0",
                    "SHUTDOWN_DRAIN_SECONDS": "0"},
                   name="webgatos-0", config=WEBGATOS_CONF, timeout=60)
    url = f"http://{LOOPBACK}:{port}"
    browsers = [Browser() for _ in range(20)]  # enough sessions to land in both members' partitions
    colors = [browser.visit(url)["color"] for browser in browsers]

    members[0].signal(signal.SIGKILL)  # no graceful leave: the backups on the survivor take over
    wait_until(lambda: not members[0].alive(), timeout=10, what="the first member to die")

    def all_sessions_kept() -> bool:
        try:
            return [browser.visit(url)["color"] for browser in browsers] == colors
        except AssertionError:
            return False  # a request failed while the cluster repartitions: try again
    # Bounded: the survivor must notice the loss and promote its backups.
    wait_until(all_sessions_kept, timeout=60, what="sessions served from the surviving member", interval=0.5)
    assert all(browser.visit(url)["new"] is False for browser in browsers)

    members[1].signal(signal.SIGKILL)
    wait_until(lambda: http_status(url + "/readyz", timeout=5) == 503, timeout=10, what="readyz to turn 503")
    ready, ready_seconds = timed_get(url + "/readyz")
    assert ready.status_code == 503 and ready_seconds < 2.0
    page, page_seconds = timed_get(url + "/")
    assert page.status_code == 503 and page_seconds < 2.0
    assert page.text == "Session store unavailable, try again shortly.\n"
    assert http_status(url + "/healthz") == 200

    procs.hazelcast_member(ports[1], ports, cluster_name, name="hazelcast-again")  # an empty new cluster
    wait_until(lambda: http_status(url + "/readyz", timeout=5) == 200, timeout=60, what="readyz to recover")
    # The whole cluster was lost, so the session is new, but the app serves again.
    wait_until(lambda: browsers[0].get(url).status_code == 200, timeout=30, what="the app to serve again")
    assert browsers[0].visit(url)["new"] is False  # the new session is stored in the new cluster


def test_direct_writes_keep_every_message_whole_under_concurrent_callers(hazelcast_members, monkeypatch):
    """install_direct_writes against real members: small calls leave from the caller's thread (the
    reactor is never woken to send them), values far bigger than one socket send are split between
    caller and reactor, and 8 threads writing and reading at once get back exactly what they wrote."""
    from concurrent.futures import ThreadPoolExecutor

    from webgatos.stores import install_direct_writes

    install_direct_writes()
    members, cluster_name = hazelcast_members
    client = hazelcast.HazelcastClient(cluster_members=members.split(","), cluster_name=cluster_name,
                                       cluster_connect_timeout=30, invocation_timeout=10)
    try:
        sessions = client.get_map(f"direct-{uuid.uuid4().hex[:8]}").blocking()
        sessions.set("warm-up", bytearray(b"x"))
        connections = list(client._connection_manager.active_connections.values())
        assert connections and all(type(c).__name__ == "DirectWriteConnection" and c.sends_directly
                                   for c in connections)
        wakes = []
        real_wake = client._reactor.wake_loop
        monkeypatch.setattr(client._reactor, "wake_loop", lambda: (wakes.append(1), real_wake()))
        for number in range(50):
            sessions.set(f"small-{number}", bytearray(number.to_bytes(2, "big")))
            assert sessions.get(f"small-{number}") == bytearray(number.to_bytes(2, "big"))
        assert wakes == [], "small calls on an idle connection are sent without the reactor"

        def write_then_read(worker: int) -> bool:
            for round_ in range(20):
                size = 1_000_000 if round_ % 10 == 0 else 100 + worker * round_  # 1 MB: a partial send
                value = bytearray(((worker * 31 + round_) % 251).to_bytes(1, "big") * size)
                sessions.set(f"w{worker}-{round_}", value)
                if sessions.get(f"w{worker}-{round_}") != value:
                    return False
                sessions.delete(f"w{worker}-{round_}")  # the members' heap is shared with other tests
            return True

        with ThreadPoolExecutor(8) as pool:
            assert all(pool.map(write_then_read, range(8)))
        assert wakes, "the rest of a partial send went to the reactor"
        sessions.destroy()
    finally:
        client.shutdown()
