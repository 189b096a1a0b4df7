"""lab.envoy: every mesh scenario renders into a bootstrap that real Envoy accepts, with the numbers
istiod would program; bad input stops with a message naming the file and the key."""

import subprocess
import sys

import pytest
import yaml

from lab import binaries, envoy
from lab.envoy import ScenarioError

UPSTREAMS = [("127.0.0.1", 18081), ("127.0.0.1", 18082)]
SCENARIOS = envoy.known_scenarios()
REQUIRED_SCENARIOS = {"no-retries", "retries", "timeout", "circuit-breaker", "outlier-detection",
                      "fault-abort", "fault-delay", "app-faults-retries"}


def render(name: str) -> dict:
    return envoy.render_bootstrap(envoy.load_scenario(name), listen_port=10000, admin_port=9901,
                                  upstreams=UPSTREAMS)


def route_of(bootstrap: dict) -> dict:
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return hcm["route_config"]["virtual_hosts"][0]["routes"][0]


def http_filter_names(bootstrap: dict) -> list[str]:
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return [f["name"] for f in hcm["http_filters"]]


def cluster_of(bootstrap: dict) -> dict:
    return bootstrap["static_resources"]["clusters"][0]


def envoy_validate(tmp_path, bootstrap: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "bootstrap.yaml"
    path.write_text(envoy.to_yaml(bootstrap))
    return subprocess.run([binaries.envoy(), "--mode", "validate", "-c", str(path), "--log-level", "error"],
                          capture_output=True, text=True, timeout=60)


def write_overlay(tmp_path, text: str):
    path = tmp_path / "overlay.yaml"
    path.write_text(text)
    return path


def test_the_issue_scenarios_all_exist():
    assert set(SCENARIOS) >= REQUIRED_SCENARIOS


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_scenario_renders_and_envoy_accepts_it(tmp_path, name):
    result = envoy_validate(tmp_path, render(name))
    assert result.returncode == 0, result.stdout + result.stderr


def test_layer4_front_is_accepted_and_balances_connections_not_requests(tmp_path):
    bootstrap = envoy.render_tcp_bootstrap(listen_port=10000, admin_port=9901, upstreams=UPSTREAMS)
    result = envoy_validate(tmp_path, bootstrap)
    assert result.returncode == 0, result.stdout + result.stderr
    network_filter = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    assert network_filter["name"] == "envoy.filters.network.tcp_proxy"
    assert cluster_of(bootstrap)["lb_policy"] == "ROUND_ROBIN"
    assert cluster_of(bootstrap)["health_checks"][0]["http_health_check"]["path"] == "/readyz"


def test_retries_follow_what_istio_programs():
    route = route_of(render("retries"))
    policy = route["route"]["retry_policy"]
    # Istio's `attempts` is Envoy's num_retries; status codes in retryOn move to their own list.
    assert policy["num_retries"] == 5
    assert policy["per_try_timeout"] == "2s"
    assert policy["retry_on"] == "connect-failure,refused-stream,reset,retriable-status-codes"
    assert policy["retriable_status_codes"] == [503]
    assert [p["name"] for p in policy["retry_host_predicate"]] == ["envoy.retry_host_predicates.previous_hosts"]
    assert policy["host_selection_retry_max_attempts"] == 5
    assert route["route"]["timeout"] == "10s"
    assert "typed_per_filter_config" not in route
    assert http_filter_names(render("retries")) == ["envoy.filters.http.router"]


def test_no_retries_renders_no_retry_policy():
    assert "retry_policy" not in route_of(render("no-retries"))["route"]


def test_timeout_scenario_sets_the_route_timeout():
    assert route_of(render("timeout"))["route"]["timeout"] == "1s"


def test_empty_timeout_means_no_timeout_as_in_istio(tmp_path):
    values = envoy.load_values(write_overlay(tmp_path, "istio: {virtualService: {timeout: ''}}\n"))
    bootstrap = envoy.render_bootstrap(values, listen_port=1, admin_port=2, upstreams=UPSTREAMS)
    assert route_of(bootstrap)["route"]["timeout"] == "0s"


def test_fault_abort_is_a_per_route_fault_without_retries():
    bootstrap = render("fault-abort")
    route = route_of(bootstrap)
    fault = route["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["abort"] == {"http_status": 503, "percentage": {"numerator": 500000, "denominator": "MILLION"}}
    assert "delay" not in fault
    # The chart leaves retries out of a faulted route, so Istio's default policy applies there
    # (it never sees the aborted requests: the fault filter answers them before the router).
    assert route["route"]["retry_policy"] == envoy.istio_default_retry_policy()
    assert http_filter_names(bootstrap) == ["envoy.filters.http.fault", "envoy.filters.http.router"]


def test_fault_delay_is_a_per_route_fixed_delay():
    fault = route_of(render("fault-delay"))["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"] == {"fixed_delay": "1s", "percentage": {"numerator": 500000, "denominator": "MILLION"}}


def test_circuit_breaker_limits_come_from_the_connection_pool():
    cluster = cluster_of(render("circuit-breaker"))
    thresholds = cluster["circuit_breakers"]["thresholds"][0]
    assert thresholds["max_connections"] == 1
    assert thresholds["max_pending_requests"] == 1
    assert thresholds["max_requests"] == 1
    options = cluster["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert options["common_http_protocol_options"]["max_requests_per_connection"] == 1


def test_unset_limits_take_istios_defaults_not_envoys(tmp_path):
    overlay = write_overlay(tmp_path, "istio: {destinationRule: {connectionPool: {http: {maxRetries: 0}}}}\n")
    values = envoy.load_values(overlay)
    cluster = cluster_of(envoy.render_bootstrap(values, listen_port=1, admin_port=2, upstreams=UPSTREAMS))
    # Envoy alone would allow 3 concurrent retries; Istio treats 0 as unset and programs 2^32-1.
    assert cluster["circuit_breakers"]["thresholds"][0]["max_retries"] == 2**32 - 1
    del values["istio"]["destinationRule"]["connectionPool"]["tcp"]["connectTimeout"]
    cluster = cluster_of(envoy.render_bootstrap(values, listen_port=1, admin_port=2, upstreams=UPSTREAMS))
    # Envoy's own default connect timeout is 5 s; Istio's mesh default is 10 s.
    assert cluster["connect_timeout"] == "10s"


def test_outlier_detection_maps_like_istio():
    cluster = cluster_of(render("outlier-detection"))
    assert cluster["outlier_detection"] == {
        "consecutive_5xx": 3, "enforcing_consecutive_5xx": 100, "enforcing_success_rate": 0,
        "successful_active_health_check_uneject_host": False,
        "interval": "1s", "base_ejection_time": "5s", "max_ejection_percent": 100}
    assert cluster["common_lb_config"]["healthy_panic_threshold"] == {"value": 0}
    assert "outlier_detection" not in cluster_of(render("retries"))


def test_every_cluster_is_round_robin_gated_by_readyz_and_without_nagle():
    for name in SCENARIOS:
        cluster = cluster_of(render(name))
        assert cluster["lb_policy"] == "ROUND_ROBIN"
        check = cluster["health_checks"][0]
        assert check["http_health_check"]["path"] == "/readyz"
        assert check["healthy_threshold"] == 1
        assert envoy.parse_duration(check["interval"], "interval") <= 1.0
        assert envoy.TCP_NODELAY_OPTION in cluster["upstream_bind_config"]["socket_options"]


def test_app_faults_scenario_sets_the_app_switches_and_keeps_retries():
    values = envoy.load_scenario("app-faults-retries")
    assert envoy.replica_environment(values)["FAULT_ERROR_RATE"] == "0.3"
    assert route_of(render("app-faults-retries"))["route"]["retry_policy"]["num_retries"] == 5
    assert envoy.replica_environment(envoy.load_scenario("retries"))["FAULT_ERROR_RATE"] == "0"


def test_unknown_scenario_lists_the_known_ones():
    with pytest.raises(ScenarioError) as error:
        envoy.load_scenario("retry")
    message = str(error.value)
    assert "unknown scenario 'retry'" in message
    assert "istio/scenarios/retry.yaml" in message
    for name in REQUIRED_SCENARIOS:
        assert name in message


def test_scenario_names_cannot_escape_the_directory():
    with pytest.raises(ScenarioError, match="unknown scenario"):
        envoy.load_scenario("../install/istiod-values")


def test_misspelled_key_names_the_file_and_the_key(tmp_path):
    overlay = write_overlay(tmp_path, "istio:\n  virtualService:\n    retries:\n      attemps: 3\n")
    with pytest.raises(ScenarioError) as error:
        envoy.load_values(overlay)
    message = str(error.value)
    assert str(overlay) in message
    assert "istio.virtualService.retries.attemps" in message


def test_fault_together_with_retries_is_refused_like_the_chart(tmp_path):
    overlay = write_overlay(tmp_path, "istio: {virtualService: {retries: {enabled: true}, "
                                      "fault: {abort: {enabled: true}}}}\n")
    with pytest.raises(ScenarioError) as error:
        envoy.load_values(overlay)
    message = str(error.value)
    assert str(overlay) in message
    assert "istio.virtualService.fault.abort.enabled" in message
    assert "faults.errorRate" in message


@pytest.mark.parametrize("text,seconds", [("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5s", 1.5),
                                          ("1h", 3600.0)])
def test_durations_parse_like_istio(text, seconds):
    assert envoy.parse_duration(text, "k") == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["2", "2 s", "two", "s", "", 2])
def test_bad_durations_name_the_key(text):
    with pytest.raises(ScenarioError, match="key 'istio.x'"):
        envoy.parse_duration(text, "istio.x")


def test_bad_duration_in_an_overlay_names_file_and_key(tmp_path):
    overlay = write_overlay(tmp_path, "istio: {virtualService: {timeout: 10}}\n")
    with pytest.raises(ScenarioError) as error:
        envoy.load_values(overlay)
    assert str(overlay) in str(error.value)
    assert "istio.virtualService.timeout" in str(error.value)


def run_cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab", "envoy", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_prints_a_bootstrap_for_the_given_topology(tmp_path):
    result = run_cli("--scenario", "retries", "--listen-port", "12000", "--admin-port", "12001",
                     "--upstream", "127.0.0.1:13000", "--upstream", "127.0.0.1:13001")
    assert result.returncode == 0, result.stderr
    bootstrap = yaml.safe_load(result.stdout)
    assert bootstrap["admin"]["address"]["socket_address"]["port_value"] == 12001
    listener = bootstrap["static_resources"]["listeners"][0]
    assert listener["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 12000}
    endpoints = cluster_of(bootstrap)["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints] == [13000, 13001]
    assert envoy_validate(tmp_path, bootstrap).returncode == 0


def test_cli_defaults_to_the_documented_local_topology():
    result = run_cli("--scenario", "no-retries")
    assert result.returncode == 0, result.stderr
    bootstrap = yaml.safe_load(result.stdout)
    endpoints = cluster_of(bootstrap)["load_assignment"]["endpoints"][0]["lb_endpoints"]
    ports = [e["endpoint"]["address"]["socket_address"]["port_value"] for e in endpoints]
    assert ports == [port for _, port in envoy.DEFAULT_UPSTREAMS]


def test_cli_unknown_scenario_is_one_clear_line():
    result = run_cli("--scenario", "nope")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown scenario 'nope'" in lines[0] and "retries" in lines[0]


def test_cli_bad_upstream_is_refused():
    result = run_cli("--scenario", "retries", "--upstream", "localhost")
    assert result.returncode == 2
    assert "HOST:PORT" in result.stderr
