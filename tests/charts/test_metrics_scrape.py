"""The charts' Prometheus scrape setup (metrics.*): the conventional Pod annotations point at the
port and path the apps serve /metrics on, and the optional ServiceMonitor selects the chart's own
Service by its http port."""

import chartlib
import pytest
import sqrt
import sqrt.settings
import webgatos
import webgatos.settings

pytestmark = pytest.mark.processes  # helm

CHARTS = ("webgatos", "sqrt")


def rendered(chart: str, *set_values: str) -> list[dict]:
    return chartlib.render(chartlib.Scenario(chart, "metrics", set_values=tuple(set_values)))


def app_deployment(docs: list[dict], chart: str) -> dict:
    return chartlib.find(docs, "Deployment", f"{chartlib.RELEASE}-{chart}")


def serves_metrics(chart: str) -> bool:
    app = (webgatos.create_app(webgatos.settings.Settings(session_store="memory", secret_key="test"))
           if chart == "webgatos" else sqrt.create_app(sqrt.settings.Settings()))
    return any(rule.rule == "/metrics" for rule in app.url_map.iter_rules())


@pytest.mark.parametrize("chart", CHARTS)
def test_pods_carry_the_scrape_annotations_by_default(chart):
    template = app_deployment(rendered(chart), chart)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics" and serves_metrics(chart)
    [container] = [c for c in template["spec"]["containers"] if c["name"] == chart]
    ports = {port["containerPort"] for port in container["ports"]}
    assert int(annotations["prometheus.io/port"]) in ports


@pytest.mark.parametrize("chart", CHARTS)
def test_annotations_can_be_switched_off(chart):
    template = app_deployment(rendered(chart, "metrics.annotations.enabled=false"), chart)["spec"]["template"]
    assert not any(key.startswith("prometheus.io/") for key in template["metadata"].get("annotations") or {})


@pytest.mark.parametrize("chart", CHARTS)
def test_no_service_monitor_unless_asked(chart):
    assert chartlib.by_kind(rendered(chart), "ServiceMonitor") == []


@pytest.mark.parametrize("chart", CHARTS)
def test_the_service_monitor_selects_the_charts_service_by_its_http_port(chart):
    docs = rendered(chart, "metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prom",
                    "metrics.serviceMonitor.interval=5s")
    [monitor] = chartlib.by_kind(docs, "ServiceMonitor")
    [service] = [doc for doc in chartlib.by_kind(docs, "Service") if doc["metadata"]["name"].endswith(chart)]
    assert chartlib.selector_matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [chartlib.NAMESPACE]
    assert monitor["metadata"]["labels"]["release"] == "prom"
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint == {"port": "http", "path": "/metrics", "interval": "5s", "scrapeTimeout": "10s"}


@pytest.mark.parametrize("chart", CHARTS)
def test_a_bad_interval_is_refused_by_the_schema(chart):
    result = chartlib.template(chartlib.Scenario(chart, "bad", set_values=("metrics.serviceMonitor.interval=soon",))
                               .helm_args(), check=False)
    assert result.returncode != 0 and "metrics/serviceMonitor/interval" in result.stderr
