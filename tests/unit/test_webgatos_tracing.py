"""webgatos's tracing switch: one variable, checked at start-up; off, the app is left as it is;
on, requests are instrumented and only requests start traces (not the probe's Redis PING); a
request the edge did not sample skips the instrumentation and makes no span."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, ParentBased
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, set_span_in_context
from webgatos import create_app, tracing
from webgatos.settings import ZIPKIN_ENDPOINT_VARIABLE, Settings, SettingsError
from werkzeug.test import EnvironBuilder

TRACE_ID, SPAN_ID = "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"
EDGE_CONTEXT = {"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID}


def test_tracing_is_off_unless_the_endpoint_is_set():
    assert Settings.from_env({}).zipkin_endpoint is None
    url = "http://zipkin.observability:9411/api/v2/spans"
    assert Settings.from_env({ZIPKIN_ENDPOINT_VARIABLE: url}).zipkin_endpoint == url


@pytest.mark.parametrize("url", ["zipkin:9411", "ftp://zipkin/api", "http://:9411/api/v2/spans",
                                 "http://zipkin:99999/api/v2/spans", "http://zipkin:port/x", "http://zipkin/x#y"])
def test_a_bad_endpoint_stops_start_up_naming_the_variable(url):
    with pytest.raises(SettingsError) as error:
        Settings.from_env({ZIPKIN_ENDPOINT_VARIABLE: url})
    message = str(error.value)
    assert message.startswith(f"{ZIPKIN_ENDPOINT_VARIABLE}=") and "http[s]://host" in message
    assert "\n" not in message


def test_off_the_app_is_not_instrumented():
    app = create_app(Settings(replica_name="w", secret_key="k"))
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


def test_on_the_app_is_instrumented_and_still_answers():
    app = create_app(Settings(replica_name="w", secret_key="k", zipkin_endpoint="http://127.0.0.1:9/api/v2/spans"))
    assert app._is_instrumented_by_opentelemetry
    response = app.test_client().get("/api/session", headers={
        "x-b3-traceid": "463ac35c9f6413ad48485a3953bb6124", "x-b3-spanid": "a2fb4a1d1a96d312", "x-b3-sampled": "1"})
    assert response.status_code == 200


def test_only_requests_start_traces():
    sampler = ParentBased(root=tracing._request_roots_only())
    trace_id = 0x463AC35C9F6413AD48485A3953BB6124
    assert sampler.should_sample(None, trace_id, "GET /", SpanKind.SERVER).decision is Decision.RECORD_AND_SAMPLE
    assert sampler.should_sample(None, trace_id, "PING", SpanKind.CLIENT).decision is Decision.DROP
    parent = set_span_in_context(NonRecordingSpan(SpanContext(trace_id, 0xA2FB4A1D1A96D312, is_remote=True,
                                                              trace_flags=TraceFlags(TraceFlags.SAMPLED))))
    assert sampler.should_sample(parent, trace_id, "GET", SpanKind.CLIENT).decision is Decision.RECORD_AND_SAMPLE


@pytest.mark.parametrize(("headers", "records"), [
    ({}, True),  # no context: a root, and request roots are sampled
    ({"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, "x-b3-sampled": "1"}, True),
    ({"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, "x-b3-sampled": "true"}, True),
    ({"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, "x-b3-sampled": "0", "x-b3-flags": "1"}, True),  # debug
    ({"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID, "x-b3-sampled": "0"}, False),
    ({"x-b3-traceid": TRACE_ID, "x-b3-spanid": SPAN_ID}, False),  # no decision: OpenTelemetry does not sample it
    ({"x-b3-sampled": "0"}, False),
    ({"b3": f"{TRACE_ID}-{SPAN_ID}-1"}, True),
    ({"b3": f"{TRACE_ID}-{SPAN_ID}-d-{SPAN_ID}"}, True),
    ({"b3": f"{TRACE_ID}-{SPAN_ID}-0"}, False),
    ({"b3": f"{TRACE_ID}-{SPAN_ID}"}, False),
    ({"b3": "1"}, True),
    ({"b3": "0"}, False),
])
def test_the_edges_decision_is_read_as_opentelemetry_reads_it(headers, records):
    environ = {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}
    assert tracing.records_spans(environ) is records


@pytest.fixture(scope="module")
def finished_spans():
    """The process's tracer provider (set once per process) with an in-memory exporter, its sampler webgatos's."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(sampler=ParentBased(root=tracing._request_roots_only()))
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def traced_app(finished_spans):
    finished_spans.clear()
    app = create_app(Settings(replica_name="w", secret_key="k", zipkin_endpoint="http://127.0.0.1:9/api/v2/spans"))
    return app.test_client()


def wsgi_environ_after(client, headers: dict) -> dict:
    """The WSGI environ of one request once the app has answered it (what the layers left in it)."""
    environ = EnvironBuilder(path="/api/session", headers=headers).get_environ()
    b"".join(client.application.wsgi_app(environ, lambda status, response_headers, exc_info=None: None))
    return environ


def test_a_request_the_edge_did_not_sample_makes_no_span_and_the_same_response(traced_app, finished_spans):
    unsampled = {**EDGE_CONTEXT, "x-b3-sampled": "0"}
    plain = create_app(Settings(replica_name="w", secret_key="k")).test_client().get("/api/session")
    response = traced_app.get("/api/session", headers=unsampled)
    assert response.status_code == plain.status_code == 200
    assert response.json.keys() == plain.json.keys()
    assert sorted(response.headers.keys()) == sorted(plain.headers.keys())
    assert finished_spans.get_finished_spans() == ()
    # Not even a non-recording span: the instrumentation never saw the request.
    assert not any(key.startswith("opentelemetry") for key in wsgi_environ_after(traced_app, unsampled))


def test_a_sampled_request_makes_its_server_span_in_the_edges_trace(traced_app, finished_spans):
    sampled = {**EDGE_CONTEXT, "x-b3-sampled": "1"}
    assert traced_app.get("/api/session", headers=sampled).status_code == 200
    [span] = finished_spans.get_finished_spans()
    assert span.kind is SpanKind.SERVER and span.name == "GET /api/session"
    assert span.context.trace_id == int(TRACE_ID, 16) and span.parent.span_id == int(SPAN_ID, 16)
    assert span.attributes["http.status_code"] == 200
    assert "opentelemetry-flask.span_key" in wsgi_environ_after(traced_app, sampled)


def test_probes_make_no_span_even_without_a_context(traced_app, finished_spans):
    for path in ("/healthz", "/readyz", "/metrics"):
        assert traced_app.get(path).status_code == 200
    traced_app.get("/api/session")  # no context: a root of its own
    assert [span.name for span in finished_spans.get_finished_spans()] == ["GET /api/session"]


def test_the_instrumentations_hooks_run_on_the_traced_path_only(traced_app, finished_spans):
    for _ in range(3):  # a hook that left a span open or a context attached would show in the next request
        traced_app.get("/api/session", headers={**EDGE_CONTEXT, "x-b3-sampled": "0"})
        traced_app.get("/api/session", headers={**EDGE_CONTEXT, "x-b3-sampled": "1"})
    assert trace.get_current_span() is trace.INVALID_SPAN
    spans = finished_spans.get_finished_spans()
    assert len(spans) == 3 and all(span.end_time for span in spans)
