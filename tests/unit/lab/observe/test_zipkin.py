"""The Zipkin client's queries and one-line errors (against a small in-process HTTP server that
answers as Zipkin's API does, and a port where nothing listens), and how traces of the gateway's
upstream attempts are read: retried, failed, or plain."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from lab.host.binaries import MissingBinary
from lab.host.procs import LOOPBACK, free_port
from lab.kube.mesh.istiod import MESH_CONFIG
from lab.observe import zipkin
from lab.observe.zipkin import ZipkinClient, ZipkinError, describe, retried_traces, upstream_attempts

CLUSTER = "outbound|80||webgatos.lab.svc.cluster.local"
GATEWAY = {"serviceName": "istio-ingressgateway.istio-ingress"}


def entry(trace_id: str, status: int) -> dict:
    """The gateway's span for the request, as Envoy's Zipkin tracer reports it."""
    tags = {"http.status_code": str(status), "response_flags": "-"}
    if status >= 500:
        tags["error"] = "true"
    return {"traceId": trace_id, "id": "e" * 16, "kind": "SERVER", "name": "webgatos.lab:80/api/*",
            "timestamp": 1_000, "localEndpoint": GATEWAY, "tags": tags}


def attempt(trace_id: str, span_id: str, at: int, address: str, status: int, flags: str = "-") -> dict:
    """One upstream attempt's span (the HCM's spawn_upstream_span)."""
    tags = {"upstream_cluster": CLUSTER, "upstream_address": address, "response_flags": flags}
    if status:
        tags["http.status_code"] = str(status)
    if not status or status >= 500:
        tags["error"] = "true"
    return {"traceId": trace_id, "id": span_id, "parentId": "e" * 16, "kind": "CLIENT", "timestamp": at,
            "name": f"router {CLUSTER} egress", "localEndpoint": GATEWAY, "tags": tags}


RETRIED = [entry("a1", 200), attempt("a1", "2" * 16, 1_200, "127.0.0.9:8080", 200),
           attempt("a1", "1" * 16, 1_100, "127.0.0.8:8080", 0, "UF")]
FAILED = [entry("b2", 503), attempt("b2", "3" * 16, 1_100, "127.0.0.8:8080", 503, "URX")]
PLAIN = [entry("c3", 200), attempt("c3", "4" * 16, 1_100, "127.0.0.9:8080", 200)]
TRACES = {"a1": RETRIED, "b2": FAILED, "c3": PLAIN}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        parts = urlsplit(self.path)
        self.server.seen.append((parts.path, parse_qs(parts.query)))
        if parts.path == "/api/v2/traces":
            status, body = 200, list(TRACES.values())
        elif parts.path.startswith("/api/v2/trace/") and parts.path.rsplit("/", 1)[1] in TRACES:
            status, body = 200, TRACES[parts.path.rsplit("/", 1)[1]]
        else:
            status, body = 404, f"{parts.path.rsplit('/', 1)[1]} not found\nsecond line"
        payload = (json.dumps(body) if status == 200 else body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def api():
    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ZipkinClient(f"http://{LOOPBACK}:{server.server_address[1]}/"), server
    server.shutdown()
    server.server_close()


def test_attempts_come_oldest_first_with_envoys_tags():
    first, second = upstream_attempts(RETRIED)
    assert (first.address, first.status, first.flags, first.failed) == ("127.0.0.8:8080", 0, "UF", True)
    assert (second.address, second.status, second.failed, second.cluster) == ("127.0.0.9:8080", 200, False, CLUSTER)


def test_why_a_trace_matters():
    assert describe(RETRIED) == "retried: 2 attempts, 1 failed (first: 127.0.0.8:8080 no answer UF)"
    assert describe(FAILED) == "failed: HTTP 503 after 1 attempt(s)"
    assert describe(PLAIN) is None


def test_traces_query_the_window_in_milliseconds(api):
    client, server = api
    client.traces(100.0, 160.5, service="webgatos", annotation_query="error", limit=7)
    path, params = server.seen[-1]
    assert path == "/api/v2/traces"
    assert params == {"endTs": ["160500"], "lookback": ["60500"], "limit": ["7"], "serviceName": ["webgatos"],
                      "annotationQuery": ["error"]}


def test_an_empty_window_is_refused():
    with pytest.raises(ValueError, match="empty time window"):
        ZipkinClient("http://127.0.0.1:1").traces(10, 5)


def test_retried_traces_lists_retried_and_failed_requests_with_their_ui_links(api):
    client, server = api
    links = retried_traces(client, 100, 200)
    assert [(link.trace_id, link.why.split(":")[0]) for link in links] == [("a1", "retried"), ("b2", "failed")]
    assert links[0].url == f"{client.url}/zipkin/traces/a1"
    assert server.seen[-1][1]["annotationQuery"] == ["error"]  # a failed attempt carries the `error` tag


def test_a_missing_trace_is_one_line_naming_the_status(api):
    client, _ = api
    with pytest.raises(ZipkinError) as error:
        client.trace("ffff")
    assert str(error.value) == "Zipkin refused /api/v2/trace/ffff: HTTP 404 ffff not found"


def test_an_unreachable_zipkin_is_one_line_naming_its_address():
    url = f"http://{LOOPBACK}:{free_port()}"
    with pytest.raises(ZipkinError) as error:
        ZipkinClient(url, timeout=2).services()
    assert str(error.value).startswith(f"Zipkin at {url} is unreachable: ")
    assert "\n" not in str(error.value)


def test_a_missing_jar_names_the_make_target(tmp_path, monkeypatch):
    monkeypatch.setattr(zipkin, "CACHE", tmp_path)
    with pytest.raises(MissingBinary, match=r"zipkin-server jar not found: run `make zipkin`"):
        zipkin.zipkin_jar()
    jar = tmp_path / "zipkin-3.5.1" / "zipkin-server-3.5.1-exec.jar"
    jar.parent.mkdir()
    jar.touch()
    assert zipkin.zipkin_jar() == str(jar)


def test_the_server_listens_on_loopback_with_bounded_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(zipkin, "zipkin_jar", lambda: "zipkin.jar")
    server = zipkin.ZipkinServer(group=None, port=9999, heap_mb=128, max_spans=1000)
    command = server.command()
    assert "-Xmx128m" in command and "--zipkin.storage.mem.max-spans=1000" in command
    assert f"--armeria.ports[0].ip={LOOPBACK}" in command and "--armeria.ports[0].port=9999" in command
    assert server.collector_url == f"http://{LOOPBACK}:9999/api/v2/spans"


def test_the_mesh_knows_the_lab_zipkin_by_the_providers_name():
    provider = next(p for p in MESH_CONFIG["extensionProviders"] if p["name"] == "zipkin")["zipkin"]
    assert (provider["service"], provider["port"]) == (zipkin.MESH_SERVICE, zipkin.MESH_SERVICE_PORT)
    entry_ = zipkin.service_entry(4242)
    assert entry_["spec"]["hosts"] == [zipkin.MESH_SERVICE]
    assert entry_["spec"]["ports"][0]["number"] == zipkin.MESH_SERVICE_PORT
    assert entry_["spec"]["endpoints"] == [{"address": LOOPBACK, "ports": {"http-zipkin": 4242}}]


def test_report_traces_are_records_and_an_unreachable_zipkin_says_so(api):
    client, _ = api
    report = zipkin.report_traces(client, 100, 200, settle_s=0)
    assert [t["trace_id"] for t in report["traces"]] == ["a1", "b2"] and "traces_error" not in report
    assert set(report["traces"][0]) == {"trace_id", "url", "why"}
    down = zipkin.report_traces(ZipkinClient(f"http://{LOOPBACK}:{free_port()}", timeout=2), 100, 200, settle_s=0)
    assert down["traces"] == [] and down["traces_error"].startswith("Zipkin at ")


def test_chart_values_turn_on_both_ends():
    values = zipkin.chart_values("http://127.0.0.1:9411/api/v2/spans", sampling_percentage=10)
    assert values["istio"]["tracing"] == {"enabled": True, "provider": "zipkin", "randomSamplingPercentage": 10}
    assert values["extraEnv"] == [{"name": "OTEL_EXPORTER_ZIPKIN_ENDPOINT",
                                   "value": "http://127.0.0.1:9411/api/v2/spans"}]
