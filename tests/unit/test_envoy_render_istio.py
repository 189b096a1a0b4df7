"""One source, two renderings agree: for every scenario, the VirtualService and DestinationRule that
`helm template charts/webgatos -f istio/scenarios/NAME.yaml` renders are translated here the way
istiod translates them (pilot/pkg/networking/core: route/retry/retry.go, route/route.go,
cluster_traffic_policy.go, Istio 1.30), independently of lab.envoy, and compared with the Envoy
bootstrap lab.envoy renders from the same values."""

import subprocess

import pytest
import yaml

from lab import binaries, envoy

SCENARIOS = envoy.known_scenarios()
UINT32_MAX = 2**32 - 1


def helm_template(scenario: str) -> list[dict]:
    try:
        helm = binaries.helm()
    except binaries.MissingBinary as missing:
        pytest.skip(str(missing))
    result = subprocess.run(
        [helm, "template", "parity", str(envoy.CHART_DIR), "-f", str(envoy.SCENARIO_DIR / f"{scenario}.yaml")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def istio_resources(scenario: str) -> tuple[dict, dict]:
    """The in-mesh VirtualService's route and the DestinationRule's trafficPolicy."""
    docs = helm_template(scenario)
    [vs] = [d for d in docs if d["kind"] == "VirtualService" and "mesh" in d["spec"].get("gateways", ["mesh"])]
    [dr] = [d for d in docs if d["kind"] == "DestinationRule"]
    [route] = vs["spec"]["http"]
    return route, dr["spec"].get("trafficPolicy", {})


def seconds(duration: str) -> float:
    return envoy.parse_duration(duration, "duration")


def expected_retry_policy(retries: dict | None) -> dict | None:
    """retry.ConvertPolicy: absent -> the default policy; attempts 0 -> none; status codes found in
    retryOn -> retriable_status_codes plus the `retriable-status-codes` condition."""
    if retries is None:
        return {"num_retries": 2, "retry_on": "connect-failure,refused-stream,unavailable,cancelled,"
                                              "retriable-status-codes",
                "retriable_status_codes": [], "per_try_timeout": None}
    if retries.get("attempts", 0) <= 0:
        return None
    parts = [p.strip() for p in retries.get("retryOn", "").split(",") if p.strip()]
    codes = [int(p) for p in parts if p.isdigit()]
    conditions = [p for p in parts if not p.isdigit()]
    if codes and "retriable-status-codes" not in conditions:
        conditions.append("retriable-status-codes")
    per_try = retries.get("perTryTimeout")
    return {"num_retries": retries["attempts"], "retry_on": ",".join(conditions), "retriable_status_codes": codes,
            "per_try_timeout": seconds(per_try) if per_try else None}


def actual_retry_policy(policy: dict | None) -> dict | None:
    if policy is None:
        return None
    assert [p["name"] for p in policy["retry_host_predicate"]] == ["envoy.retry_host_predicates.previous_hosts"]
    assert policy["host_selection_retry_max_attempts"] == 5
    per_try = policy.get("per_try_timeout")
    return {"num_retries": policy["num_retries"], "retry_on": policy["retry_on"],
            "retriable_status_codes": policy.get("retriable_status_codes", []),
            "per_try_timeout": seconds(per_try) if per_try else None}


def expected_fault(fault: dict | None) -> dict | None:
    """TranslateFault: percentage -> per-million fraction."""
    if fault is None:
        return None
    out = {}
    if "abort" in fault:
        out["abort"] = (fault["abort"]["httpStatus"], round(fault["abort"]["percentage"]["value"] * 10000))
    if "delay" in fault:
        out["delay"] = (seconds(fault["delay"]["fixedDelay"]), round(fault["delay"]["percentage"]["value"] * 10000))
    return out


def actual_fault(route: dict) -> dict | None:
    config = route.get("typed_per_filter_config", {}).get("envoy.filters.http.fault")
    if config is None:
        return None
    out = {}
    for kind in ("abort", "delay"):
        if kind in config:
            assert config[kind]["percentage"]["denominator"] == "MILLION"
            first = config[kind]["http_status"] if kind == "abort" else seconds(config[kind]["fixed_delay"])
            out[kind] = (first, config[kind]["percentage"]["numerator"])
    return out


def expected_cluster(policy: dict) -> dict:
    """applyConnectionPool (defaults 2^32-1, a limit only when above 0; connect timeout from the
    mesh, 10 s, unless set) and applyOutlierDetection (success rate off, panic threshold 0)."""
    pool = policy.get("connectionPool", {})
    tcp, http = pool.get("tcp", {}), pool.get("http", {})

    def limit(value):
        return value if value and value > 0 else UINT32_MAX

    expected = {
        "max_connections": limit(tcp.get("maxConnections")),
        "max_pending_requests": limit(http.get("http1MaxPendingRequests")),
        "max_requests": limit(http.get("http2MaxRequests")),
        "max_retries": limit(http.get("maxRetries")),
        "connect_timeout": seconds(tcp.get("connectTimeout", "10s")),
        "max_requests_per_connection": http.get("maxRequestsPerConnection") or None,
        "outlier": None,
    }
    outlier = policy.get("outlierDetection")
    if outlier is not None:
        consecutive = outlier.get("consecutive5xxErrors")
        expected["outlier"] = {
            "consecutive_5xx": consecutive,
            "enforcing_consecutive_5xx": 100 if consecutive else 0,
            "enforcing_success_rate": 0,
            "interval": seconds(outlier["interval"]) if "interval" in outlier else None,
            "base_ejection_time": seconds(outlier["baseEjectionTime"]) if "baseEjectionTime" in outlier else None,
            "max_ejection_percent": outlier.get("maxEjectionPercent") or None,
            "healthy_panic_threshold": 0,
        }
    return expected


def actual_cluster(cluster: dict) -> dict:
    thresholds = cluster["circuit_breakers"]["thresholds"][0]
    options = cluster.get("typed_extension_protocol_options", {}).get(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {})
    actual = {key: thresholds[key] for key in ("max_connections", "max_pending_requests", "max_requests",
                                               "max_retries")}
    actual["connect_timeout"] = seconds(cluster["connect_timeout"])
    actual["max_requests_per_connection"] = options.get("common_http_protocol_options", {}).get(
        "max_requests_per_connection")
    outlier = cluster.get("outlier_detection")
    actual["outlier"] = None if outlier is None else {
        "consecutive_5xx": outlier.get("consecutive_5xx"),
        "enforcing_consecutive_5xx": outlier.get("enforcing_consecutive_5xx"),
        "enforcing_success_rate": outlier.get("enforcing_success_rate"),
        "interval": seconds(outlier["interval"]) if "interval" in outlier else None,
        "base_ejection_time": seconds(outlier["base_ejection_time"]) if "base_ejection_time" in outlier else None,
        "max_ejection_percent": outlier.get("max_ejection_percent"),
        "healthy_panic_threshold": cluster["common_lb_config"]["healthy_panic_threshold"]["value"],
    }
    return actual


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_istio_and_envoy_renderings_agree(scenario):
    istio_route, traffic_policy = istio_resources(scenario)
    bootstrap = envoy.render_bootstrap(envoy.load_scenario(scenario), listen_port=10000, admin_port=9901,
                                       upstreams=envoy.DEFAULT_UPSTREAMS)
    envoy_route = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0][
        "typed_config"]["route_config"]["virtual_hosts"][0]["routes"][0]
    cluster = bootstrap["static_resources"]["clusters"][0]

    # Route timeout: Istio programs 0 (none) when the VirtualService has no timeout.
    expected_timeout = seconds(istio_route["timeout"]) if "timeout" in istio_route else 0.0
    assert seconds(envoy_route["route"]["timeout"]) == expected_timeout
    assert actual_retry_policy(envoy_route["route"].get("retry_policy")) == expected_retry_policy(
        istio_route.get("retries"))
    assert actual_fault(envoy_route) == expected_fault(istio_route.get("fault"))
    assert actual_cluster(cluster) == expected_cluster(traffic_policy)


def test_the_talks_retries_read_the_same_on_both_sides():
    istio_route, _ = istio_resources("retries")
    assert istio_route["retries"] == {"attempts": 5, "perTryTimeout": "2s",
                                      "retryOn": "connect-failure,refused-stream,reset,503",
                                      "retryRemoteLocalities": False}
