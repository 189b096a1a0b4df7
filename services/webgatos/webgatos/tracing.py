"""Spans with OpenTelemetry, sent to Zipkin, when `Settings.zipkin_endpoint` is set (else nothing
here runs and nothing of OpenTelemetry is imported).

Two halves, because the batch span processor's export thread does not survive a fork:
- `instrument(app, settings)` (create_app, in each worker): a server span per request (Flask), a
  client span per Redis command inside it (the session's save; the session is read before the
  span starts), and B3 headers read from the request: Envoy's Zipkin tracer
  propagates B3, so the app's spans join the gateway's trace. A Redis command outside a request
  (the readiness probe's PING) starts no trace of its own (`RequestRootsOnly`).
- `start_exporter(settings)` (gunicorn's post_fork, in each worker): the tracer provider with its
  batch processor and Zipkin exporter; `stop_exporter()` (worker_exit) flushes what is queued.

Sampling is decided at the edge (the gateway's `randomSamplingPercentage`). A request the edge did
not sample goes straight to the uninstrumented app (`records_spans`): letting OpenTelemetry's
Flask instrumentation follow the decision cost about a third more CPU a request, for no span.
"""

from flask import Flask, request

from webgatos.settings import Settings

SERVICE_NAME = "webgatos"
# Probes and scrapes would bury the requests people look for.
UNTRACED_PATHS = "healthz,readyz,metrics"
_UNTRACED_ROUTES = frozenset(f"/{path}" for path in UNTRACED_PATHS.split(","))
# Set in the environ of a request sent down the instrumented path; the Flask hooks look for it.
TRACED_KEY = "webgatos.traced"
# What OpenTelemetry's B3 propagator reads as "sampled" (x-b3-sampled, or the b3 header's third field).
_SAMPLED = frozenset({"1", "true", "True", "d"})

# The batch processor's flush interval stays OpenTelemetry's 5 s (docs/tracing.md relies on it);
# larger batches mean fewer POSTs to Zipkin at 100 % sampling.
EXPORT_BATCH_SPANS = 2048
QUEUED_SPANS_AT_MOST = 8192

_provider = None


def records_spans(environ: dict) -> bool:
    """Whether the instrumented path would record this request's spans, read off its B3 headers as
    OpenTelemetry's propagator and sampler (`ParentBased(RequestRootsOnly)`) read them: sampled or
    debug → yes; a parent's "not sampled", or a context without a decision → no; no context at all →
    a root, and every request root is sampled. An explicit deny (`b3: 0`) is a no, as B3 means it."""
    single = environ.get("HTTP_B3")
    if single:
        fields = single.split("-", 4)
        if len(fields) == 1:
            return fields[0] in _SAMPLED
        return len(fields) > 2 and fields[2] in _SAMPLED
    if environ.get("HTTP_X_B3_SAMPLED") in _SAMPLED or environ.get("HTTP_X_B3_FLAGS") == "1":
        return True
    return "HTTP_X_B3_SAMPLED" not in environ and "HTTP_X_B3_TRACEID" not in environ


def instrument(app: Flask, settings: Settings) -> None:
    if not settings.zipkin_endpoint:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.b3 import B3MultiFormat

    set_global_textmap(B3MultiFormat())  # reads the single `b3` header too
    uninstrumented = app.wsgi_app
    # No meter provider: the request metrics are prometheus_client's (metrics.py), not OpenTelemetry's.
    # No SQL commenter: there is no SQL, and it attached a context to every request.
    FlaskInstrumentor().instrument_app(app, excluded_urls=UNTRACED_PATHS, enable_commenter=False,
                                       meter_provider=NoOpMeterProvider())
    _hooks_only_when_traced(app)
    app.wsgi_app = _dispatch(uninstrumented, app.wsgi_app)
    if settings.session_store == "redis":
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        instrumentor = RedisInstrumentor()
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument()
        # The store's fast path bypasses the client's command path, where the instrumentation hooks:
        # take that path only in a request that is traced (sampled), not in the others.
        from opentelemetry.trace import get_current_span
        app.session_interface.route_through_client_when(lambda: get_current_span().is_recording())


def _dispatch(uninstrumented, instrumented):
    def traced_if_sampled(environ, start_response):
        if records_spans(environ) and environ.get("PATH_INFO") not in _UNTRACED_ROUTES:
            environ[TRACED_KEY] = True
            return instrumented(environ, start_response)
        return uninstrumented(environ, start_response)

    return traced_if_sampled


def _hooks_only_when_traced(app: Flask) -> None:
    """The instrumentation's before_request and teardown_request hooks (registered on the app, so run
    for every request) skip the requests that did not come down the instrumented path."""
    for hooks, hook in ((app.before_request_funcs[None], app._before_request),
                        (app.teardown_request_funcs[None], app._teardown_request)):
        hooks[hooks.index(hook)] = _when_traced(hook)


def _when_traced(hook):
    def hook_when_traced(*args):
        if TRACED_KEY in request.environ:
            return hook(*args)
        return None

    return hook_when_traced


def start_exporter(settings: Settings) -> None:
    """The tracer provider of this process: spans batched to Zipkin, named after the replica."""
    global _provider
    if not settings.zipkin_endpoint:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.zipkin.json import ZipkinExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    # Resource(...) rather than Resource.create(...): without the SDK's own attributes, which the
    # Zipkin exporter would copy into every span's tags.
    resource = Resource({"service.name": SERVICE_NAME, "service.instance.id": settings.replica_name})
    _provider = TracerProvider(resource=resource, sampler=ParentBased(root=_request_roots_only()))
    _provider.add_span_processor(BatchSpanProcessor(
        ZipkinExporter(endpoint=settings.zipkin_endpoint, timeout=5),
        max_queue_size=QUEUED_SPANS_AT_MOST, max_export_batch_size=EXPORT_BATCH_SPANS))
    trace.set_tracer_provider(_provider)


def _request_roots_only():
    """A sampler for spans without a parent: requests (SERVER spans) are traced, anything else is not."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind

    class RequestRootsOnly(Sampler):
        def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None,
                          trace_state=None):
            decision = Decision.RECORD_AND_SAMPLE if kind == SpanKind.SERVER else Decision.DROP
            return SamplingResult(decision, attributes if decision is Decision.RECORD_AND_SAMPLE else None, trace_state)

        def get_description(self) -> str:
            return "RequestRootsOnly"

    return RequestRootsOnly()


def stop_exporter(timeout_millis: int = 5000) -> None:
    """Export what is queued (bounded), then stop the export thread."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)
        _provider.shutdown()
