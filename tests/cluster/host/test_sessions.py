"""Sessions on real Pods behind a real ClusterIP Service (kube-proxy's rules): with the memory
store a user who reaches the other replica on a new connection loses the color, with Redis or
Hazelcast every replica serves the same color. The Hazelcast members find each other through the
headless Service and form one cluster, as a client sees it."""

import http.cookiejar
import json
import urllib.request

import pytest
from chartlib import CHARTS_DIR

from tests.cluster.host.conftest import SELECTOR_WEB

REQUESTS = 24
WEBGATOS = CHARTS_DIR / "webgatos"
# Closes the connection after each response, so each request picks a Pod again (as in the demos).
PER_REQUEST = ["-f", str(CHARTS_DIR.parent / "scripts" / "cluster" / "values" / "per-request-balancing.yaml")]


def visit_many(url: str, count: int = REQUESTS) -> list[dict]:
    """One user (one cookie jar), `count` visits, each on a new connection."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    answers = []
    for _ in range(count):
        with opener.open(f"{url}/api/session", timeout=10) as response:
            answers.append(json.load(response))
    return answers


def install_and_visit(host_tier, namespace: str, *values: str) -> list[dict]:
    host_tier.install("lab", namespace, WEBGATOS, "--set", "replicaCount=2", *PER_REQUEST, *values)
    host_tier.wait_for(lambda: len(host_tier.ready_pods(namespace, SELECTOR_WEB)) == 2, 60, "2 ready replicas",
                       namespace)
    return visit_many(host_tier.service_url(namespace, "lab-webgatos", replicas=2))


def test_memory_store_loses_colors_across_replicas(host_tier, host_namespace):
    answers = install_and_visit(host_tier, host_namespace, "--set", "sessionStore.type=memory")
    assert len({a["hostname"] for a in answers}) == 2, "the Service sent every request to one Pod"
    assert len({a["color"] for a in answers}) > 1, [(a["hostname"], a["color"]) for a in answers]
    assert sum(a["new"] for a in answers) > 1  # the other replica did not know the session


@pytest.mark.parametrize("store_values", [["-f", str(CHARTS_DIR / "webgatos" / "ci" / "redis-values.yaml")],
                                          ["-f", str(CHARTS_DIR / "webgatos" / "ci" / "hazelcast-values.yaml")]],
                         ids=["redis", "hazelcast"])
def test_shared_stores_keep_one_color_on_every_replica(host_tier, host_namespace, store_values):
    answers = install_and_visit(host_tier, host_namespace, *store_values)
    assert len({a["hostname"] for a in answers}) == 2, "the Service sent every request to one Pod"
    assert len({a["color"] for a in answers}) == 1, [(a["hostname"], a["color"]) for a in answers]
    assert [a["new"] for a in answers] == [True] + [False] * (REQUESTS - 1)
    assert [a["visits"] for a in answers] == list(range(1, REQUESTS + 1))


def test_hazelcast_members_form_one_cluster_through_the_headless_service(host_tier, host_namespace):
    import hazelcast
    host_tier.install("lab", host_namespace, WEBGATOS, "-f", str(WEBGATOS / "ci" / "hazelcast-values.yaml"))
    service = host_tier.get("service", "lab-webgatos-hazelcast", "--namespace", host_namespace)
    client = hazelcast.HazelcastClient(cluster_name="dev", cluster_members=[f"{service['spec']['clusterIP']}:5701"],
                                       cluster_connect_timeout=30, smart_routing=False)
    try:
        members = client.cluster_service.get_members()
    finally:
        client.shutdown()
    pods = host_tier.pods(host_namespace, "app.kubernetes.io/component=hazelcast")
    assert len(members) == 3, members
    assert sorted(str(m.address.host) for m in members) == sorted(p["status"]["podIP"] for p in pods)
