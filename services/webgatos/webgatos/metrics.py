"""Prometheus metrics of webgatos: the shared HTTP metrics (service_common.metrics) plus the
sessions' (created, lost), the store's and the fault switches' counters, in the same registry."""

from prometheus_client import Counter
from service_common.metrics import HttpMetrics

HTTP = HttpMetrics(buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SESSIONS_CREATED = Counter("webgatos_sessions_created_total", "Sessions created (a color assigned)",
                           registry=HTTP.registry)
# A request that brought a session cookie this replica's store does not know: the user gets a new
# color. The server-side count of Locust's "color changes" (what Prometheus judges).
SESSIONS_LOST = Counter("webgatos_sessions_lost_total",
                        "Requests with a session cookie the store did not know (a new color given)",
                        registry=HTTP.registry)
STORE_ERRORS = Counter("webgatos_store_errors_total", "Session store calls that failed", ["operation"],
                       registry=HTTP.registry)
FAULTS_INJECTED = Counter("webgatos_faults_injected_total", "Requests answered by a fault switch", ["kind"],
                          registry=HTTP.registry)
