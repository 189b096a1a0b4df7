"""Zipkin: the real server (the `io.zipkin:zipkin-server` exec jar that `make zipkin` caches), its
place in the lab's mesh, and a small client of its HTTP API.

    with ProcessGroup(logs) as group:
        zipkin = ZipkinServer(group).start()           # in-memory storage, loopback, bounded heap
        register_in_mesh(cluster.plane, zipkin.port)   # istiod's `zipkin` provider can now reach it
        client = ZipkinClient(zipkin.url)
        retried_traces(client, started, ended)         # [TraceLink(trace_id, url, why), ...]

The gateway's Envoy reports one span per request and, below it, one span per upstream attempt
(istiod sets the HCM's `spawn_upstream_span` for gateways). `retried_traces` reads those attempt
spans: a request whose trace holds a failed attempt was either retried (it ended well) or failed.
"""

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass

from lab.host.binaries import MissingBinary, java
from lab.host.paths import CACHE
from lab.host.procs import LOOPBACK, Proc, ProcessGroup, free_port, http_status, wait_until
from lab.kube.controlplane import ControlPlane

# What istiod's `zipkin` extension provider names (lab/kube/mesh/istiod.py's MESH_CONFIG); the
# ServiceEntry of `register_in_mesh` gives that name the lab server's loopback address.
MESH_SERVICE = "zipkin.istio-system.svc.cluster.local"
MESH_SERVICE_PORT = 9411
MESH_NAMESPACE = "istio-system"
SPANS_PATH = "/api/v2/spans"
# Envoy and OpenTelemetry's batch processor both flush at least every 5 s.
EXPORT_SETTLE_SECONDS = 6.0
# Envoy's tags on an upstream attempt's span (source/common/tracing/tracer_impl.cc).
UPSTREAM_CLUSTER_TAG = "upstream_cluster"
UPSTREAM_ADDRESS_TAG = "upstream_address"


class ZipkinError(RuntimeError):
    """Zipkin is unreachable or refused a query; the message is one line that says which."""


def zipkin_jar() -> str:
    """The newest cached server jar (`make zipkin` puts it in .cache/zipkin-VERSION/)."""
    jars = sorted(CACHE.glob("zipkin-*/zipkin-server-*-exec.jar"))
    if not jars:
        raise MissingBinary("zipkin-server jar not found: run `make zipkin`")
    return str(jars[-1])


class ZipkinServer:
    """One Zipkin server on loopback with in-memory storage (at most `max_spans` spans, the oldest
    traces dropped first) and a bounded Java heap; stopped with its process group."""

    def __init__(self, group: ProcessGroup, port: int = 0, heap_mb: int = 256, max_spans: int = 200_000):
        self.group, self.heap_mb, self.max_spans = group, heap_mb, max_spans
        self.port = port or free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.proc: Proc | None = None

    @property
    def collector_url(self) -> str:
        """Where OpenTelemetry's Zipkin exporter and Envoy post spans (Zipkin v2 JSON)."""
        return f"{self.url}{SPANS_PATH}"

    def command(self) -> list[str]:
        return [java(), f"-Xmx{self.heap_mb}m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-jar", zipkin_jar(),
                "--zipkin.storage.type=mem", f"--zipkin.storage.mem.max-spans={self.max_spans}",
                # Armeria serves Zipkin: one HTTP port, bound to loopback only.
                f"--server.port={self.port}", f"--armeria.ports[0].ip={LOOPBACK}",
                f"--armeria.ports[0].port={self.port}", "--armeria.ports[0].protocols[0]=http"]

    def start(self, timeout: float = 120.0) -> "ZipkinServer":
        self.proc = self.group.start("zipkin", self.command())
        wait_until(lambda: http_status(f"{self.url}/health") == 200, timeout, f"Zipkin's /health on {self.url}",
                   interval=0.25, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=5)


def service_entry(port: int, address: str = LOOPBACK) -> dict:
    """The mesh's record of the lab's Zipkin: `MESH_SERVICE:9411` is `address:port`. istiod then
    builds the cluster its `zipkin` provider names (EndpointSlices refuse loopback addresses)."""
    return {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry",
            "metadata": {"name": "zipkin", "namespace": MESH_NAMESPACE},
            "spec": {"hosts": [MESH_SERVICE], "location": "MESH_INTERNAL", "resolution": "STATIC",
                     "ports": [{"number": MESH_SERVICE_PORT, "name": "http-zipkin", "protocol": "HTTP"}],
                     "endpoints": [{"address": address, "ports": {"http-zipkin": port}}]}}


def chart_values(collector_url: str, sampling_percentage: float = 100) -> dict:
    """charts/webgatos values that trace a release: the gateway's and sidecars' Telemetry (istiod's
    `zipkin` provider) and webgatos's own exporter (OTEL_EXPORTER_ZIPKIN_ENDPOINT)."""
    return {"istio": {"tracing": {"enabled": True, "provider": "zipkin",
                                  "randomSamplingPercentage": sampling_percentage}},
            "extraEnv": [{"name": "OTEL_EXPORTER_ZIPKIN_ENDPOINT", "value": collector_url}]}


def register_in_mesh(plane: ControlPlane, port: int) -> None:
    plane.kubectl("create", "namespace", MESH_NAMESPACE, check=False)
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=json.dumps(service_entry(port)))


class ZipkinClient:
    """Zipkin's query API (/api/v2). Every failure is a ZipkinError with a one-line reason."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url, self.timeout = url.rstrip("/"), timeout

    def ui_url(self, trace_id: str) -> str:
        return f"{self.url}/zipkin/traces/{trace_id}"

    def _get(self, path: str, query: dict | None = None):
        address = f"{self.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = error.read(200).decode(errors="replace").strip().splitlines()
            raise ZipkinError(f"Zipkin refused {path}: HTTP {error.code} {detail[0] if detail else ''}".strip()) \
                from None
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise ZipkinError(f"Zipkin at {self.url} is unreachable: {reason}") from None

    def services(self) -> list[str]:
        return self._get("/api/v2/services")

    def traces(self, start_s: float, end_s: float, *, service: str | None = None, annotation_query: str | None = None,
               limit: int = 100) -> list[list[dict]]:
        """Traces with a span in [start_s, end_s] (epoch seconds), newest first, at most `limit`."""
        if end_s < start_s:
            raise ValueError(f"empty time window: {start_s} > {end_s}")
        query = {"endTs": int(end_s * 1000), "lookback": max(1, int((end_s - start_s) * 1000)), "limit": limit}
        if service:
            query["serviceName"] = service
        if annotation_query:
            query["annotationQuery"] = annotation_query
        return self._get("/api/v2/traces", query)

    def trace(self, trace_id: str) -> list[dict]:
        return self._get(f"/api/v2/trace/{urllib.parse.quote(trace_id, safe='')}")


@dataclass(frozen=True)
class Attempt:
    """One upstream attempt of the gateway, from its span's tags."""
    span_id: str
    parent_id: str | None
    timestamp_us: int
    cluster: str
    address: str
    status: int  # 0: no HTTP answer (a connection failure, a reset)
    flags: str  # Envoy's response flags, "-" for none
    failed: bool


@dataclass(frozen=True)
class TraceLink:
    """A trace worth a look, as the report lists it."""
    trace_id: str
    url: str
    why: str


def upstream_attempts(trace: list[dict]) -> list[Attempt]:
    """The gateway's upstream attempt spans of one trace, oldest first."""
    attempts = []
    for span in trace:
        tags = span.get("tags", {})
        if span.get("kind") != "CLIENT" or UPSTREAM_CLUSTER_TAG not in tags:
            continue
        status = int(tags.get("http.status_code") or 0)
        attempts.append(Attempt(span["id"], span.get("parentId"), span.get("timestamp", 0),
                                tags[UPSTREAM_CLUSTER_TAG], tags.get(UPSTREAM_ADDRESS_TAG, ""), status,
                                tags.get("response_flags", "-"), "error" in tags or status == 0 or status >= 500))
    return sorted(attempts, key=lambda attempt: attempt.timestamp_us)


def entry_status(trace: list[dict]) -> int:
    """The status the client got: the gateway's server span (the root of the trace), 0 if none."""
    roots = [span for span in trace if span.get("kind") == "SERVER" and UPSTREAM_CLUSTER_TAG not in span.get("tags", {})
             and not span.get("parentId")]
    return int(roots[0].get("tags", {}).get("http.status_code") or 0) if roots else 0


def describe(trace: list[dict]) -> str | None:
    """Why a trace matters ("retried: ...", "failed: ..."), or None for a plain success."""
    attempts = upstream_attempts(trace)
    failed = [attempt for attempt in attempts if attempt.failed]
    status = entry_status(trace)
    if status >= 500 or (not status and failed and failed[-1] is attempts[-1]):
        return f"failed: HTTP {status or 'none'} after {len(attempts)} attempt(s)"
    if failed:
        first = failed[0]
        return (f"retried: {len(attempts)} attempts, {len(failed)} failed (first: {first.address} "
                f"{first.status or 'no answer'} {first.flags})")
    return None


def retried_traces(client: ZipkinClient, start_s: float, end_s: float, limit: int = 20) -> list[TraceLink]:
    """The failed or retried requests of [start_s, end_s]: Zipkin finds the traces with an `error`
    tag (a failed attempt carries one), and each is kept when `describe` says why it matters."""
    links = []
    for trace in client.traces(start_s, end_s, annotation_query="error", limit=max(limit * 5, 50)):
        why = describe(trace)
        if why and trace:
            links.append(TraceLink(trace[0]["traceId"], client.ui_url(trace[0]["traceId"]), why))
        if len(links) >= limit:
            break
    return links


def report_traces(client: ZipkinClient, start_s: float, end_s: float, limit: int = 20,
                  settle_s: float = EXPORT_SETTLE_SECONDS) -> dict:
    """results.json's `traces` for a run of [start_s, end_s]: waits (bounded) for the last span
    batches, then {"traces": [{trace_id, url, why}, ...]}, plus "traces_error" (one line) when
    Zipkin could not be read: never an empty list that looks like a clean run."""
    time.sleep(max(0.0, end_s + settle_s - time.time()))
    try:
        return {"traces": [asdict(link) for link in retried_traces(client, start_s, end_s, limit)]}
    except ZipkinError as error:
        return {"traces": [], "traces_error": str(error)}
