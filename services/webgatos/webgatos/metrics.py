"""Prometheus metrics of webgatos: the shared HTTP metrics (service_common.metrics) plus the
sessions', the store's and the fault switches' counters, in the same registry."""

from prometheus_client import Counter
from service_common.metrics import HttpMetrics

HTTP = HttpMetrics(buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SESSIONS_CREATED = Counter("webgatos_sessions_created_total", "Sessions created (a color assigned)",
                           registry=HTTP.registry)
STORE_ERRORS = Counter("webgatos_store_errors_total", "Session store calls that failed", ["operation"],
                       registry=HTTP.registry)
FAULTS_INJECTED = Counter("webgatos_faults_injected_total", "Requests answered by a fault switch", ["kind"],
                          registry=HTTP.registry)
