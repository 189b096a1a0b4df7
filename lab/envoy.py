"""`python -m lab envoy`: print the Envoy bootstrap that plays Istio's sidecar in the local lab.

One source, two renderings: a mesh scenario is a values overlay for `charts/webgatos`
(`istio/scenarios/NAME.yaml`). On a cluster the chart renders it into a VirtualService and a
DestinationRule and istiod programs Envoy; here we program Envoy the way istiod would, from the
same values. Every place where Istio's meaning or default differs from Envoy's is mapped the way
Istio maps it (pilot/pkg/networking/core: route/retry/retry.go, route/route.go,
cluster_traffic_policy.go); docs/mesh.md has the table.
"""

import argparse
import copy
import json
import re
import sys
import urllib.request
from pathlib import Path

import jsonschema
import yaml

from lab.procs import LOOPBACK

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO_DIR = REPO_ROOT / "istio" / "scenarios"
CHART_DIR = REPO_ROOT / "charts" / "webgatos"

# The local topology `python -m lab envoy` renders by default (docs/mesh.md lists it).
DEFAULT_LISTEN_PORT = 10000
DEFAULT_ADMIN_PORT = 9901
DEFAULT_UPSTREAMS = [(LOOPBACK, 8081), (LOOPBACK, 8082)]

CLUSTER_NAME = "webgatos"
UINT32_MAX = 2**32 - 1
# Istio's MeshConfig.connectTimeout default, used when the DestinationRule sets none.
ISTIO_DEFAULT_CONNECT_TIMEOUT = "10s"
# IPPROTO_TCP / TCP_NODELAY on Linux: Envoy's own sockets never wait for Nagle (DESIGN trap).
TCP_NODELAY_OPTION = {"description": "TCP_NODELAY", "level": 6, "name": 1, "int_value": 1}

# The readiness gate: Kubernetes only lists ready pods as endpoints; here Envoy probes /readyz.
# Fast enough that a restarted replica gets traffic again within about a second of being ready.
READINESS_CHECK = {
    "timeout": "1.5s",  # /readyz itself bounds its store check with STORE_TIMEOUT_SECONDS (1 s)
    "interval": "0.5s",
    "no_traffic_interval": "0.5s",
    "unhealthy_threshold": 2,
    "healthy_threshold": 1,
    "http_health_check": {"path": "/readyz"},
}

# The values this module translates: an overlay key there that the chart does not define is refused.
INTERPRETED_SUBTREES = ("faults", "istio.virtualService", "istio.destinationRule")


class ScenarioError(ValueError):
    """A scenario cannot be loaded or rendered; the message names the file and the key."""


# ---------------------------------------------------------------------------------------------
# Loading: chart defaults + overlay, validated.


def known_scenarios() -> list[str]:
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.yaml"))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ScenarioError(f"{_relative(path)}: not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ScenarioError(f"{_relative(path)}: expected a mapping of values at the top level")
    return data


def deep_merge(base: dict, overlay: dict) -> dict:
    """Helm's rule for `-f` files: maps merge key by key, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _chart_defaults() -> tuple[dict, str]:
    values_path = CHART_DIR / "values.yaml"
    if not values_path.is_file():
        raise ScenarioError(f"{_relative(values_path)}: missing; the scenarios are overlays for that chart")
    return _read_yaml(values_path), _relative(values_path)


def _has_path(data: dict, path: list) -> bool:
    node = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _dotted(parts) -> str:
    return ".".join(str(part) for part in parts)


def _validate_schema(values: dict, overlay: dict, overlay_name: str, defaults_name: str) -> None:
    schema_path = CHART_DIR / "values.schema.json"
    if not schema_path.is_file():
        raise ScenarioError(f"{_relative(schema_path)}: missing; it is what catches misspelled keys")
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(values), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if not errors:
        return
    error = errors[0]
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(key for key in error.instance if key not in allowed)
        if extra:
            key_path = path + [extra[0]]
            source = overlay_name if _has_path(overlay, key_path) else defaults_name
            raise ScenarioError(f"{source}: unknown key '{_dotted(key_path)}' (allowed under "
                                f"'{_dotted(path) or '<top>'}': {', '.join(sorted(allowed))}; "
                                f"schema {_relative(schema_path)})")
    source = overlay_name if _has_path(overlay, path) else defaults_name
    raise ScenarioError(f"{source}: key '{_dotted(path) or '<top>'}': {error.message} "
                        f"(schema {_relative(schema_path)})")


def _check_known_keys(defaults: dict, overlay: dict, overlay_name: str) -> None:
    """Reject overlay keys the chart does not define in the subtrees this module reads, even if
    a permissive schema would let them through: a typo there silently changes the policy."""

    def walk(base, node, path):
        if not isinstance(node, dict) or not isinstance(base, dict):
            return
        for key, value in node.items():
            if key not in base:
                raise ScenarioError(f"{overlay_name}: unknown key '{_dotted(path + [key])}' "
                                    f"(known under '{_dotted(path)}': {', '.join(sorted(base))})")
            walk(base[key], value, path + [key])

    for subtree in INTERPRETED_SUBTREES:
        parts = subtree.split(".")
        base, node = defaults, overlay
        for part in parts:
            base = base.get(part, {}) if isinstance(base, dict) else {}
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            walk(base, node, parts)


def load_scenario(name: str) -> dict:
    """Chart defaults merged with `istio/scenarios/NAME.yaml`, validated against the chart's
    schema and checked for the rules the chart enforces. Raises ScenarioError."""
    overlay_path = SCENARIO_DIR / f"{name}.yaml"
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name or "") or not overlay_path.is_file():
        raise ScenarioError(f"unknown scenario '{name}': no file {_relative(overlay_path)}; "
                            f"known scenarios: {', '.join(known_scenarios())}")
    return load_values(overlay_path)


def load_values(overlay_path: str | Path) -> dict:
    """Like load_scenario, for an overlay file anywhere (the tests use it for broken overlays)."""
    overlay_path = Path(overlay_path)
    overlay_name = _relative(overlay_path)
    overlay = _read_yaml(overlay_path)
    defaults, defaults_name = _chart_defaults()
    values = deep_merge(defaults, overlay)
    _validate_schema(values, overlay, overlay_name, defaults_name)
    _check_known_keys(defaults, overlay, overlay_name)
    try:
        mesh_policy(values)
    except ScenarioError as error:
        raise ScenarioError(f"{overlay_name}: {error}") from None
    return values


# ---------------------------------------------------------------------------------------------
# Translation: values -> what istiod would program into Envoy.

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(h|ms|us|µs|ns|m|s)")
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text, key: str) -> float:
    """Seconds in a Go/Istio duration ("2s", "500ms", "1m30s"). Bare numbers are refused: Istio's
    CRDs refuse them too."""
    if not isinstance(text, str) or not text.strip():
        raise ScenarioError(f"key '{key}': expected a duration such as 2s or 500ms, got {text!r}")
    text = text.strip()
    position, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ScenarioError(f"key '{key}': expected a duration such as 2s or 500ms, got {text!r}")
    return total


def envoy_duration(seconds: float) -> str:
    """Protobuf JSON duration text: seconds with up to nanosecond digits, e.g. "0.5s"."""
    text = f"{seconds:.9f}".rstrip("0").rstrip(".")
    return f"{text}s"


def _fractional_percent(percentage, key: str) -> dict:
    """Istio's translatePercentToFractionalPercent: per-million numerator."""
    if not isinstance(percentage, (int, float)) or isinstance(percentage, bool) or not 0 <= percentage <= 100:
        raise ScenarioError(f"key '{key}': expected a percentage between 0 and 100, got {percentage!r}")
    return {"numerator": round(percentage * 10000), "denominator": "MILLION"}


def _positive_int(values: dict, key: str, path: str) -> int:
    value = values.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ScenarioError(f"key '{path}.{key}': expected a whole number >= 0, got {value!r}")
    return value


def parse_retry_on(retry_on: str) -> tuple[str, list[int]]:
    """Istio's parseRetryOn: integers that are HTTP statuses become retriable_status_codes (and
    imply `retriable-status-codes`); the rest stays Envoy retry_on conditions."""
    conditions, codes = [], []
    for part in (piece.strip() for piece in retry_on.split(",")):
        if not part:
            continue
        if part.isdigit() and 100 <= int(part) <= 599:
            codes.append(int(part))
        else:
            conditions.append(part)
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    return ",".join(conditions), codes


# Part of every policy istiod programs: prefer a host that has not been tried yet.
_RETRY_OTHER_HOSTS = {
    "retry_host_predicate": [{
        "name": "envoy.retry_host_predicates.previous_hosts",
        "typed_config": {"@type": "type.googleapis.com/"
                                  "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"},
    }],
    "host_selection_retry_max_attempts": 5,
}


def istio_default_retry_policy() -> dict:
    """What istiod programs for a route without `retries` (retry.go DefaultPolicy; since Istio
    1.24 without retriable status 503, so `retriable-status-codes` matches nothing)."""
    return {"retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
            "num_retries": 2, **copy.deepcopy(_RETRY_OTHER_HOSTS)}


def mesh_policy(values: dict) -> dict:
    """The resilience policy in Envoy's terms, from chart values. Raises ScenarioError."""
    istio = values.get("istio") or {}
    vs = istio.get("virtualService") or {}
    dr = istio.get("destinationRule") or {}
    retries = vs.get("retries") or {}
    fault = vs.get("fault") or {}
    abort = fault.get("abort") or {}
    delay = fault.get("delay") or {}

    faulted = bool(abort.get("enabled") or delay.get("enabled"))
    retry_policy = None
    attempts = _positive_int(retries, "attempts", "istio.virtualService.retries")
    if not retries.get("enabled") and faulted:
        # The chart leaves `retries` out of a faulted route, and Istio then programs its default.
        retry_policy = istio_default_retry_policy()
    elif retries.get("enabled") and attempts > 0:
        retry_on, codes = parse_retry_on(str(retries.get("retryOn") or ""))
        # Istio: `attempts` is Envoy's num_retries (retries after the first try), not total tries.
        retry_policy = {
            "retry_on": retry_on or "connect-failure,refused-stream,unavailable,cancelled",
            "num_retries": attempts,
            **copy.deepcopy(_RETRY_OTHER_HOSTS),
        }
        if codes:
            retry_policy["retriable_status_codes"] = codes
        if retries.get("perTryTimeout"):
            retry_policy["per_try_timeout"] = envoy_duration(
                parse_duration(retries["perTryTimeout"], "istio.virtualService.retries.perTryTimeout"))
        if retries.get("retryRemoteLocalities"):
            retry_policy["retry_priority"] = {
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.retry.priority."
                                          "previous_priorities.v3.PreviousPrioritiesConfig",
                                 "update_frequency": 2},
            }

    fault_config = {}
    if abort.get("enabled"):
        status = abort.get("httpStatus", 503)
        if not isinstance(status, int) or not 200 <= status < 600:
            raise ScenarioError(f"key 'istio.virtualService.fault.abort.httpStatus': expected an HTTP status, "
                                f"got {status!r}")
        fault_config["abort"] = {
            "http_status": status,
            "percentage": _fractional_percent(abort.get("percentage", 100), "istio.virtualService.fault.abort"
                                                                            ".percentage"),
        }
    if delay.get("enabled"):
        fault_config["delay"] = {
            "fixed_delay": envoy_duration(parse_duration(delay.get("fixedDelay"),
                                                         "istio.virtualService.fault.delay.fixedDelay")),
            "percentage": _fractional_percent(delay.get("percentage", 100), "istio.virtualService.fault.delay"
                                                                            ".percentage"),
        }
    if fault_config and retries.get("enabled"):
        on = "abort" if "abort" in fault_config else "delay"
        raise ScenarioError(
            f"key 'istio.virtualService.fault.{on}.enabled' is on together with "
            "'istio.virtualService.retries.enabled': Istio's fault filter answers before the router, "
            "so retries never see the fault (istio/istio#13705). Turn retries off, or inject the fault "
            "with the app's switches (faults.errorRate, faults.delaySeconds) to show retries masking it")

    timeout = vs.get("timeout") or ""
    # Istio: no VirtualService timeout means no route timeout at all (Envoy's default is 15 s).
    route_timeout = envoy_duration(parse_duration(timeout, "istio.virtualService.timeout")) if timeout else "0s"

    pool = dr.get("connectionPool") or {}
    tcp = pool.get("tcp") or {}
    http = pool.get("http") or {}
    # Istio's getDefaultCircuitBreakerThresholds, then only the limits set above zero.
    thresholds = {"max_connections": UINT32_MAX, "max_pending_requests": UINT32_MAX,
                  "max_requests": UINT32_MAX, "max_retries": UINT32_MAX, "track_remaining": True}
    for istio_key, section, section_name, envoy_key in (
            ("maxConnections", tcp, "tcp", "max_connections"),
            ("http1MaxPendingRequests", http, "http", "max_pending_requests"),
            ("http2MaxRequests", http, "http", "max_requests"),
            ("maxRetries", http, "http", "max_retries")):
        limit = _positive_int(section, istio_key, f"istio.destinationRule.connectionPool.{section_name}")
        if limit > 0:
            thresholds[envoy_key] = limit
    connect_timeout = envoy_duration(parse_duration(tcp.get("connectTimeout") or ISTIO_DEFAULT_CONNECT_TIMEOUT,
                                                    "istio.destinationRule.connectionPool.tcp.connectTimeout"))
    max_requests_per_connection = _positive_int(http, "maxRequestsPerConnection",
                                                "istio.destinationRule.connectionPool.http")

    outlier = dr.get("outlierDetection") or {}
    outlier_detection = None
    if outlier.get("enabled"):
        path = "istio.destinationRule.outlierDetection"
        consecutive = _positive_int(outlier, "consecutive5xxErrors", path)
        # Istio turns success-rate ejection off and enforces consecutive 5xx fully (or not at all).
        outlier_detection = {
            "consecutive_5xx": consecutive,
            "enforcing_consecutive_5xx": 100 if consecutive > 0 else 0,
            "enforcing_success_rate": 0,
            # Istio has no active health check; ours (the readiness gate) must not cut an
            # ejection short just because /readyz still answers while the app fails requests.
            "successful_active_health_check_uneject_host": False,
        }
        if outlier.get("interval"):
            outlier_detection["interval"] = envoy_duration(parse_duration(outlier["interval"], f"{path}.interval"))
        if outlier.get("baseEjectionTime"):
            outlier_detection["base_ejection_time"] = envoy_duration(
                parse_duration(outlier["baseEjectionTime"], f"{path}.baseEjectionTime"))
        max_ejection = _positive_int(outlier, "maxEjectionPercent", path)
        if max_ejection > 0:
            outlier_detection["max_ejection_percent"] = min(max_ejection, 100)

    return {
        "route_timeout": route_timeout,
        "retry_policy": retry_policy,
        "fault": fault_config or None,
        "circuit_breaker_thresholds": thresholds,
        "connect_timeout": connect_timeout,
        "max_requests_per_connection": max_requests_per_connection,
        "outlier_detection": outlier_detection,
    }


def replica_environment(values: dict) -> dict[str, str]:
    """The app's own fault switches (chart `faults.*`) as the replicas' FAULT_* variables."""
    faults = values.get("faults") or {}
    return {
        "FAULT_ERROR_RATE": str(faults.get("errorRate", 0)),
        "FAULT_ERROR_STATUS": str(faults.get("errorStatus", 503)),
        "FAULT_DELAY_SECONDS": str(faults.get("delaySeconds", 0)),
    }


# ---------------------------------------------------------------------------------------------
# Bootstraps.


def _admin(admin_port: int) -> dict:
    return {"address": {"socket_address": {"address": LOOPBACK, "port_value": admin_port}}}


def _listener(name: str, listen_port: int, network_filter: dict) -> dict:
    return {
        "name": name,
        "address": {"socket_address": {"address": LOOPBACK, "port_value": listen_port}},
        "socket_options": [TCP_NODELAY_OPTION],
        "filter_chains": [{"filters": [network_filter]}],
    }


def _endpoints(upstreams) -> dict:
    if not upstreams:
        raise ScenarioError("at least one upstream host:port is needed")
    return {"cluster_name": CLUSTER_NAME, "endpoints": [{"lb_endpoints": [
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}
        for host, port in upstreams]}]}


def _base_cluster(upstreams, connect_timeout: str) -> dict:
    return {
        "name": CLUSTER_NAME,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        "lb_policy": "ROUND_ROBIN",
        "load_assignment": _endpoints(upstreams),
        "health_checks": [dict(READINESS_CHECK)],
        # Kubernetes drops unready pods from the endpoints, so Istio's Envoy never sends them
        # traffic; a panic threshold of 0 keeps Envoy from "panic routing" to unready hosts.
        "common_lb_config": {"healthy_panic_threshold": {"value": 0}},
        "upstream_bind_config": {"source_address": {"address": LOOPBACK, "port_value": 0},
                                 "socket_options": [TCP_NODELAY_OPTION]},
    }


ACCESS_LOG = [{
    "name": "envoy.access_loggers.stdout",
    "typed_config": {"@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"},
}]


def render_bootstrap(values: dict, *, listen_port: int, admin_port: int,
                     upstreams: list[tuple[str, int]]) -> dict:
    """A complete Envoy v3 bootstrap: loopback listener -> HTTP connection manager -> one route
    with the scenario's timeout, retries or fault -> round-robin cluster of `upstreams` with the
    DestinationRule's circuit breakers and outlier detection, gated by /readyz health checks."""
    policy = mesh_policy(values)

    route_action = {"cluster": CLUSTER_NAME, "timeout": policy["route_timeout"]}
    if policy["retry_policy"] is not None:
        route_action["retry_policy"] = policy["retry_policy"]
    route = {"match": {"prefix": "/"}, "route": route_action}

    http_filters = []
    if policy["fault"]:
        # As istiod does: the filter sits in the chain, the fault itself is per route.
        http_filters.append({"name": "envoy.filters.http.fault", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}})
        route["typed_per_filter_config"] = {"envoy.filters.http.fault": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault",
            **({"abort": policy["fault"]["abort"]} if "abort" in policy["fault"] else {}),
            **({"delay": policy["fault"]["delay"]} if "delay" in policy["fault"] else {}),
        }}
    http_filters.append({"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})

    connection_manager = {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                     ".HttpConnectionManager",
            "stat_prefix": "webgatos",
            "codec_type": "AUTO",
            "normalize_path": True,
            "merge_slashes": True,
            "access_log": ACCESS_LOG,
            "route_config": {"name": "webgatos", "virtual_hosts": [
                {"name": "webgatos", "domains": ["*"], "routes": [route]}]},
            "http_filters": http_filters,
        },
    }

    cluster = _base_cluster(upstreams, policy["connect_timeout"])
    cluster["circuit_breakers"] = {"thresholds": [policy["circuit_breaker_thresholds"]]}
    if policy["max_requests_per_connection"] > 0:
        cluster["typed_extension_protocol_options"] = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": {"max_requests_per_connection": policy["max_requests_per_connection"]},
            "explicit_http_config": {"http_protocol_options": {}},
        }}
    if policy["outlier_detection"] is not None:
        cluster["outlier_detection"] = policy["outlier_detection"]

    return {
        "admin": _admin(admin_port),
        "static_resources": {
            "listeners": [_listener("webgatos_http", listen_port, connection_manager)],
            "clusters": [cluster],
        },
    }


def render_tcp_bootstrap(*, listen_port: int, admin_port: int, upstreams: list[tuple[str, int]]) -> dict:
    """A layer-4 front: each TCP connection goes to the next ready replica and stays there, as a
    plain Kubernetes Service (kube-proxy) balances connections, not requests."""
    tcp_proxy = {
        "name": "envoy.filters.network.tcp_proxy",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": "webgatos_tcp",
            "cluster": CLUSTER_NAME,
        },
    }
    cluster = _base_cluster(upstreams, ISTIO_DEFAULT_CONNECT_TIMEOUT)
    return {
        "admin": _admin(admin_port),
        "static_resources": {
            "listeners": [_listener("webgatos_tcp", listen_port, tcp_proxy)],
            "clusters": [cluster],
        },
    }


def to_yaml(bootstrap: dict) -> str:
    return yaml.safe_dump(bootstrap, sort_keys=False, default_flow_style=False)


# ---------------------------------------------------------------------------------------------
# Reading a running Envoy through its admin port (loopback only).


def _admin_text(admin_port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{admin_port}{path}", timeout=2.0) as response:
        return response.read().decode()


def upstream_health(admin_port: int) -> dict[tuple[str, int], str]:
    """Health flags of each upstream host of the webgatos cluster, e.g. {("127.0.0.1", 8081):
    "healthy", ("127.0.0.1", 8082): "/failed_active_hc"}; {} when the admin port does not answer."""
    try:
        text = _admin_text(admin_port, "/clusters")
    except OSError:
        return {}
    health = {}
    for line in text.splitlines():
        parts = line.split("::")
        if len(parts) == 4 and parts[0] == CLUSTER_NAME and parts[2] == "health_flags":
            host, _, port = parts[1].rpartition(":")
            health[(host, int(port))] = parts[3]
    return health


def healthy_upstreams(admin_port: int) -> set[tuple[str, int]]:
    return {host for host, flags in upstream_health(admin_port).items() if flags == "healthy"}


def counter(admin_port: int, name: str) -> int:
    """One counter from Envoy's /stats, e.g. "cluster.webgatos.upstream_rq_retry"; 0 when absent."""
    text = _admin_text(admin_port, f"/stats?filter=^{re.escape(name)}$")
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    return 0


# ---------------------------------------------------------------------------------------------
# Command line.


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"expected a port 1-65535, got {text!r}")
    return int(text)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "envoy", help="print the Envoy bootstrap (YAML) for a mesh scenario",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    front = parser.add_mutually_exclusive_group()
    front.add_argument("--scenario", help="istio/scenarios/NAME.yaml (a values overlay for charts/webgatos)")
    front.add_argument("--layer4", action="store_true",
                        help="render the plain TCP round-robin front instead (no scenario: a Kubernetes "
                             "Service without a mesh)")
    parser.add_argument("--listen-port", type=_port, default=DEFAULT_LISTEN_PORT, help="Envoy's port on 127.0.0.1")
    parser.add_argument("--admin-port", type=_port, default=DEFAULT_ADMIN_PORT, help="Envoy admin port")
    parser.add_argument("--upstream", type=_host_port, action="append", metavar="HOST:PORT",
                        help="a webgatos replica (repeat); default "
                             + " ".join(f"{h}:{p}" for h, p in DEFAULT_UPSTREAMS))
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.list:
        print("\n".join(known_scenarios()))
        return 0
    upstreams = args.upstream or DEFAULT_UPSTREAMS
    if args.layer4:
        bootstrap = render_tcp_bootstrap(listen_port=args.listen_port, admin_port=args.admin_port,
                                         upstreams=upstreams)
    else:
        if not args.scenario:
            print(f"envoy: --scenario is required; known scenarios: {', '.join(known_scenarios())}",
                  file=sys.stderr)
            return 2
        try:
            values = load_scenario(args.scenario)
            bootstrap = render_bootstrap(values, listen_port=args.listen_port, admin_port=args.admin_port,
                                         upstreams=upstreams)
        except ScenarioError as error:
            print(f"envoy: {error}", file=sys.stderr)
            return 2
    sys.stdout.write(to_yaml(bootstrap))
    return 0
