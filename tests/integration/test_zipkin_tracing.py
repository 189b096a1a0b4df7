"""A real Zipkin server (lab/observe/zipkin.py) and what reaches it: webgatos's spans from a real
gunicorn worker (the exporter started in post_fork) joined to the caller's B3 trace, with a span
per Redis command, and no trace of the readiness probe nor of a request the caller did not
sample; and the gateway-shaped spans that `retried_traces` picks out through Zipkin's own
`annotationQuery`."""

import json
import time
import urllib.request

import pytest
import requests

from lab.host.procs import LOOPBACK, ProcessGroup, free_port, wait_for_value
from lab.observe.zipkin import ZipkinClient, ZipkinServer, retried_traces
from tests.integration.webgatos_client import WEBGATOS_CONF
from tests.unit.lab.observe.test_zipkin import FAILED, PLAIN, RETRIED

TRACE_ID = "463ac35c9f6413ad48485a3953bb6124"
PARENT_ID = "a2fb4a1d1a96d312"
UNSAMPLED_TRACE_ID = "5b8efff798038103d269b633813fc60c"


@pytest.fixture(scope="module")
def zipkin(tmp_path_factory):
    with ProcessGroup(tmp_path_factory.mktemp("zipkin")) as group:
        server = ZipkinServer(group, heap_mb=192).start()
        yield server
        server.stop()
        assert not server.proc.alive()


def test_webgatos_spans_join_the_callers_trace(zipkin, procs, redis_url):
    port = free_port()
    procs.gunicorn("webgatos:create_app()", port,
                   {"SESSION_STORE": "redis", "REDIS_URL": redis_url, "SHUTDOWN_DRAIN_SECONDS": "0",
                    "OTEL_EXPORTER_ZIPKIN_ENDPOINT": zipkin.collector_url}, name="webgatos", config=WEBGATOS_CONF)
    with requests.Session() as session:
        # First a request the gateway did not sample: it must leave nothing in Zipkin.
        response = session.get(f"http://{LOOPBACK}:{port}/api/session", timeout=10, headers={
            "x-b3-traceid": UNSAMPLED_TRACE_ID, "x-b3-spanid": PARENT_ID, "x-b3-sampled": "0"})
        assert response.status_code == 200
        for _ in range(2):  # each saves its session: a SET
            response = session.get(f"http://{LOOPBACK}:{port}/api/session", timeout=10, headers={
                "x-b3-traceid": TRACE_ID, "x-b3-spanid": PARENT_ID, "x-b3-sampled": "1"})
            assert response.status_code == 200
    client = ZipkinClient(zipkin.url)

    def spans():
        try:
            found = client.trace(TRACE_ID)
        except Exception:
            return None
        return found if [s["name"] for s in found].count("set") == 2 else None
    trace = wait_for_value(spans, 30, "webgatos's request and Redis spans in Zipkin", interval=0.5)
    requests_ = [s for s in trace if s["kind"] == "SERVER"]
    assert [s["name"] for s in requests_] == ["get /api/session"] * 2
    assert {s["parentId"] for s in requests_} == {PARENT_ID}
    assert {s["localEndpoint"]["serviceName"] for s in trace} == {"webgatos"}
    redis_spans = [s for s in trace if s["kind"] == "CLIENT"]
    assert {s["parentId"] for s in redis_spans} <= {s["id"] for s in requests_}
    assert all(s["tags"]["db.system"] == "redis" for s in redis_spans)
    # The probes ran all along (gunicorn's readiness wait): none of them started a trace.
    now = time.time()
    traces = client.traces(now - 120, now + 1, service="webgatos", limit=100)
    assert traces and all(any(s.get("kind") == "SERVER" for s in t) for t in traces), traces
    # Exported in order: the sampled spans are there, so the unsampled request's would be by now.
    assert UNSAMPLED_TRACE_ID not in {s["traceId"] for t in traces for s in t}


def post_spans(zipkin: ZipkinServer, spans: list[dict]) -> None:
    request = urllib.request.Request(zipkin.collector_url, data=json.dumps(spans).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def test_retried_traces_finds_the_retried_and_failed_requests(zipkin):
    now_us = int(time.time() * 1_000_000)
    spans = []
    for span in RETRIED + FAILED + PLAIN:
        trace_id = span["traceId"].rjust(16, "0")
        spans.append({**span, "traceId": trace_id, "timestamp": now_us + span["timestamp"], "duration": 100})
    post_spans(zipkin, spans)
    client = ZipkinClient(zipkin.url)
    links = wait_for_value(lambda: retried_traces(client, time.time() - 60, time.time() + 1) or None, 20,
                           "the posted traces to be queryable", interval=0.5)
    assert sorted((link.trace_id.lstrip("0"), link.why.split(":")[0]) for link in links) == [
        ("a1", "retried"), ("b2", "failed")]
