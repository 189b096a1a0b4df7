"""The talk's test, for real: two gunicorn replicas, one user (one cookie jar) alternating between
them for 10 requests. With a shared store (Redis) or a replicated one (Hazelcast) the color never
changes; with the in-process memory store it does: the non-scalable variant really breaks."""

import pytest

from tests.integration.webgatos_client import Browser

REQUESTS = 10


def alternate(urls: list[str]) -> list[dict]:
    browser = Browser()
    return [browser.visit(urls[i % len(urls)]) for i in range(REQUESTS)]


@pytest.mark.parametrize("store", ["redis", pytest.param("hazelcast", marks=pytest.mark.hazelcast)])
def test_shared_store_keeps_the_color_across_replicas(start_webgatos, store):
    urls = start_webgatos(store, replicas=2)
    visits = alternate(urls)
    assert {visit["hostname"] for visit in visits} == {"webgatos-0", "webgatos-1"}
    assert len({visit["color"] for visit in visits}) == 1, [visit["color"] for visit in visits]
    assert [visit["new"] for visit in visits] == [True] + [False] * (REQUESTS - 1)
    assert [visit["visits"] for visit in visits] == list(range(1, REQUESTS + 1))
    assert len({visit["session_id_hash"] for visit in visits}) == 1


def test_memory_store_loses_the_session_on_every_switch(start_webgatos):
    urls = start_webgatos("memory", replicas=2)
    visits = alternate(urls)
    assert {visit["hostname"] for visit in visits} == {"webgatos-0", "webgatos-1"}
    # Each replica knows nothing of the other's sessions: every request starts a new one.
    assert all(visit["new"] for visit in visits)
    assert all(visit["visits"] == 1 for visit in visits)
    colors = [visit["color"] for visit in visits]
    assert len(set(colors)) > 1, colors  # the user sees the color change


def test_memory_store_works_with_one_replica(start_webgatos):
    """The control: the same user on one replica keeps its color, so the switch is what breaks it."""
    [url] = start_webgatos("memory", replicas=1)
    visits = alternate([url])
    assert len({visit["color"] for visit in visits}) == 1
    assert [visit["visits"] for visit in visits] == list(range(1, REQUESTS + 1))
