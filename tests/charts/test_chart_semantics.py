"""What a cluster would prove and a schema cannot: that the rendered pieces fit together and fit
the real apps (HPA targets, selectors, probes, ports, Istio hosts, budgets, stores, secrets,
security, graceful shutdown). Every scenario of both charts is checked."""

import re
import runpy
from urllib.parse import urlsplit

import chartlib
import pytest
import sqrt
import sqrt.settings
import webgatos
import webgatos.settings

pytestmark = pytest.mark.processes  # helm, the CLIs or servers, in most tests

SCENARIOS = chartlib.scenarios()
SCENARIO_IDS = [scenario.id for scenario in SCENARIOS]
WEBGATOS_SCENARIOS = [scenario for scenario in SCENARIOS if scenario.chart == "webgatos"]
APP_CONTAINERS = {"webgatos": "webgatos", "sqrt": "sqrt"}
GUNICORN_CONFIGS = {name: chartlib.REPO_ROOT / "services" / name / "gunicorn.conf.py" for name in APP_CONTAINERS}
SETTINGS = {"webgatos": webgatos.settings.Settings, "sqrt": sqrt.settings.Settings}
parametrize_scenarios = pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIO_IDS)


def app_url_rules(chart: str) -> set[str]:
    if chart == "webgatos":
        app = webgatos.create_app(webgatos.settings.Settings(session_store="memory", secret_key="test"))
    else:
        app = sqrt.create_app(sqrt.settings.Settings())
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}


def app_deployment(scenario) -> dict:
    return chartlib.find(chartlib.render(scenario), "Deployment", f"{chartlib.RELEASE}-{scenario.chart}")


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def literal_env(container: dict, placeholder: str = "from-a-kubernetes-secret") -> dict[str, str]:
    """The container's environment as the app would see it; secret references become a placeholder
    (long enough to pass for the admin token) and $(VAR) references are expanded as the kubelet does."""
    env = {}
    for item in container.get("env", []):
        value = item.get("value", placeholder)
        env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda match: env.get(match[1], match[0]), value)
    return env


def all_containers(docs: list[dict]):
    for doc in docs:
        if doc["kind"] in chartlib.WORKLOAD_KINDS:
            spec = pod_spec(doc)
        elif doc["kind"] == "Pod":
            spec = doc["spec"]
        else:
            continue
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield doc, spec, container


@parametrize_scenarios
def test_each_hpa_targets_a_rendered_deployment_whose_containers_all_request_cpu(scenario):
    docs = chartlib.render(scenario)
    hpas = chartlib.by_kind(docs, "HorizontalPodAutoscaler")
    values = chartlib.chart_values(scenario)
    assert bool(hpas) == values["autoscaling"]["enabled"]
    has_mesh = any(chartlib.is_istio(doc) for doc in docs) or scenario.chart == "sqrt"
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        deployment = chartlib.find(docs, "Deployment", target["name"])
        assert deployment is not None, f"HPA {hpa['metadata']['name']} targets a Deployment that is not rendered"
        assert "replicas" not in deployment["spec"], "the Deployment must leave replicas to the HPA"
        for container in pod_spec(deployment)["containers"]:
            assert container.get("resources", {}).get("requests", {}).get("cpu"), container["name"]
        metric = hpa["spec"]["metrics"][0]["resource"]
        assert metric["name"] == "cpu" and metric["target"]["type"] == "Utilization"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        assert hpa["spec"]["behavior"]["scaleUp"]["stabilizationWindowSeconds"] == 0, "scale up must be fast"
        if has_mesh:
            # The injected Istio sidecar is a container too: without a CPU request the HPA stops.
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert annotations.get("sidecar.istio.io/proxyCPU")


@parametrize_scenarios
def test_service_selectors_match_exactly_one_workload_and_a_named_container_port(scenario):
    docs = chartlib.render(scenario)
    services = chartlib.by_kind(docs, "Service")
    assert services
    for service in services:
        selector = service["spec"]["selector"]
        matched = [workload for workload in chartlib.workloads(docs)
                   if chartlib.selector_matches(selector, workload["spec"]["template"]["metadata"]["labels"])]
        assert len(matched) == 1, f"Service {service['metadata']['name']} selects {len(matched)} workloads"
        workload = matched[0]
        assert chartlib.selector_matches(workload["spec"]["selector"]["matchLabels"],
                                         workload["spec"]["template"]["metadata"]["labels"])
        port_names = {port["name"] for container in pod_spec(workload)["containers"]
                      for port in container.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names, f"{service['metadata']['name']}: {port['targetPort']}"


@parametrize_scenarios
def test_app_probes_use_paths_the_app_serves_on_its_port(scenario):
    deployment = app_deployment(scenario)
    container = next(c for c in pod_spec(deployment)["containers"] if c["name"] == APP_CONTAINERS[scenario.chart])
    routes = app_url_rules(scenario.chart)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    settings = SETTINGS[scenario.chart].from_env(literal_env(container))
    assert ports["http"] == settings.port
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}
    for probe_name, path in expected.items():
        probe = container[probe_name]["httpGet"]
        assert probe["path"] == path and probe["path"] in routes
        assert probe["port"] in ports


@parametrize_scenarios
def test_app_environment_is_accepted_by_the_app_settings(scenario):
    deployment = app_deployment(scenario)
    container = pod_spec(deployment)["containers"][0]
    env = literal_env(container)
    settings = SETTINGS[scenario.chart].from_env(env)  # raises SettingsError naming a bad variable
    if scenario.chart == "webgatos":
        values = chartlib.chart_values(scenario)
        assert settings.session_store == values["sessionStore"]["type"]
        assert settings.fault_error_rate == values["faults"]["errorRate"]
        assert settings.session_ttl_seconds == values["sessionStore"]["ttlSeconds"]
    else:
        assert settings.max_iterations == chartlib.chart_values(scenario)["maxIterations"]


@parametrize_scenarios
def test_termination_grace_covers_prestop_and_gunicorn_graceful_shutdown(scenario, monkeypatch, tmp_path):
    deployment = app_deployment(scenario)
    spec = pod_spec(deployment)
    container = spec["containers"][0]
    env = literal_env(container)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    gunicorn_config = runpy.run_path(str(GUNICORN_CONFIGS[scenario.chart]))
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert float(env["SHUTDOWN_DRAIN_SECONDS"]) < gunicorn_config["graceful_timeout"]
    assert spec["terminationGracePeriodSeconds"] > pre_stop + gunicorn_config["graceful_timeout"]


@parametrize_scenarios
def test_disruption_budgets_select_a_workload_and_never_block_every_eviction(scenario):
    docs = chartlib.render(scenario)
    for pdb in chartlib.by_kind(docs, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [w for w in chartlib.workloads(docs)
                   if chartlib.selector_matches(selector, w["spec"]["template"]["metadata"]["labels"])]
        assert len(matched) == 1, pdb["metadata"]["name"]
        workload = matched[0]
        hpa = next((h for h in chartlib.by_kind(docs, "HorizontalPodAutoscaler")
                    if h["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]), None)
        replicas = hpa["spec"]["minReplicas"] if hpa else workload["spec"]["replicas"]
        assert replicas > 1, "a budget on a single pod blocks every node drain"
        if "maxUnavailable" in pdb["spec"]:
            assert pdb["spec"]["maxUnavailable"] not in (0, "0%")
        else:
            min_available = pdb["spec"]["minAvailable"]
            assert isinstance(min_available, int) and min_available < replicas
    deployment = app_deployment(scenario)
    hpa_on = chartlib.chart_values(scenario)["autoscaling"]["enabled"]
    runs = chartlib.chart_values(scenario)["autoscaling"]["minReplicas"] if hpa_on else deployment["spec"]["replicas"]
    covered = chartlib.find(docs, "PodDisruptionBudget", deployment["metadata"]["name"]) is not None
    assert covered == (runs > 1)


@parametrize_scenarios
def test_every_container_runs_restricted(scenario):
    docs = chartlib.render(scenario)
    for doc, spec, container in all_containers(docs):
        where = f"{chartlib.doc_id(doc)}/{container['name']}"
        pod_security = spec.get("securityContext", {})
        security = container.get("securityContext", {})
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
        assert security.get("readOnlyRootFilesystem") is True, where
        assert security.get("allowPrivilegeEscalation") is False, where
        assert security.get("capabilities", {}).get("drop") == ["ALL"], where
        assert pod_security.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        assert spec.get("automountServiceAccountToken") is False, where
        assert container.get("resources", {}).get("limits", {}).get("memory"), where
        if container["name"] in APP_CONTAINERS.values():
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            volumes = {volume["name"]: volume for volume in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], "gunicorn and the metrics need a writable /tmp"


@parametrize_scenarios
def test_secrets_come_from_secret_objects_never_from_values(scenario):
    docs = chartlib.render(scenario)
    secrets = {doc["metadata"]["name"] for doc in chartlib.by_kind(docs, "Secret")}
    values = chartlib.chart_values(scenario)
    external = {values.get("existingSecret"),
                values.get("sessionStore", {}).get("redis", {}).get("existingSecret"),
                values.get("sessionStore", {}).get("redis", {}).get("external", {}).get("existingSecret")} - {None, ""}
    for doc, _, container in all_containers(docs):
        for item in container.get("env", []):
            if item["name"] in ("SECRET_KEY", "REDIS_PASSWORD", "REDISCLI_AUTH"):
                reference = item["valueFrom"]["secretKeyRef"]
                assert reference["name"] in secrets | external, f"{chartlib.doc_id(doc)}: {item['name']}"
            if item["name"] == "REDIS_URL":
                assert urlsplit(item["value"]).password in (None, "$(REDIS_PASSWORD)")
    for secret in chartlib.by_kind(docs, "Secret"):
        assert all(len(value) >= 48 for value in secret["data"].values()), "generated secrets are long and random"


@pytest.mark.parametrize("scenario", WEBGATOS_SCENARIOS, ids=[s.id for s in WEBGATOS_SCENARIOS])
def test_session_store_switch_points_the_app_at_a_rendered_store(scenario):
    docs = chartlib.render(scenario)
    values = chartlib.chart_values(scenario)["sessionStore"]
    env = literal_env(pod_spec(app_deployment(scenario))["containers"][0])
    store = values["type"]
    assert env["SESSION_STORE"] == store
    redis_set = chartlib.find(docs, "StatefulSet", f"{chartlib.RELEASE}-webgatos-redis")
    hazelcast_set = chartlib.find(docs, "StatefulSet", f"{chartlib.RELEASE}-webgatos-hazelcast")
    assert (redis_set is not None) == (store == "redis" and values["redis"]["bundled"])
    assert (hazelcast_set is not None) == (store == "hazelcast" and values["hazelcast"]["bundled"])
    if store == "redis" and redis_set:
        url = urlsplit(env["REDIS_URL"])
        service = chartlib.find(docs, "Service", url.hostname)
        assert service and chartlib.selector_matches(service["spec"]["selector"],
                                                     redis_set["spec"]["template"]["metadata"]["labels"])
        assert url.port in [port["port"] for port in service["spec"]["ports"]]
        persistent = values["redis"]["persistence"]["enabled"]
        assert bool(redis_set["spec"].get("volumeClaimTemplates")) == persistent
    if store == "hazelcast" and hazelcast_set:
        host, port = env["HAZELCAST_MEMBERS"].split(":")
        service = chartlib.find(docs, "Service", host)
        assert service and int(port) in [p["port"] for p in service["spec"]["ports"]]
        headless = chartlib.find(docs, "Service", hazelcast_set["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
        config_map = chartlib.find(docs, "ConfigMap", hazelcast_set["metadata"]["name"])
        config = chartlib.yaml.safe_load(config_map["data"]["hazelcast.yaml"])["hazelcast"]
        assert config["cluster-name"] == env["HAZELCAST_CLUSTER_NAME"]
        assert config["network"]["join"]["kubernetes"]["service-dns"] == (
            f"{headless['metadata']['name']}.{chartlib.NAMESPACE}.svc.cluster.local")
        assert config["map"]["default"]["backup-count"] == values["hazelcast"]["backupCount"]
        probes = hazelcast_set["spec"]["template"]["spec"]["containers"][0]
        assert probes["readinessProbe"]["httpGet"]["path"] == "/hazelcast/health/ready"
        assert chartlib.find(docs, "PodDisruptionBudget", hazelcast_set["metadata"]["name"])


@pytest.mark.parametrize("scenario", WEBGATOS_SCENARIOS, ids=[s.id for s in WEBGATOS_SCENARIOS])
def test_network_policies_let_only_webgatos_reach_its_store(scenario):
    docs = chartlib.render(scenario)
    policies = chartlib.by_kind(docs, "NetworkPolicy")
    enabled = chartlib.chart_values(scenario)["networkPolicy"]["enabled"]
    stores = [w for w in chartlib.workloads(docs) if w["kind"] == "StatefulSet"]
    if not enabled:
        assert not policies
        return
    web_labels = app_deployment(scenario)["spec"]["template"]["metadata"]["labels"]
    for store in stores:
        labels = store["spec"]["template"]["metadata"]["labels"]
        policy = next(p for p in policies if chartlib.selector_matches(p["spec"]["podSelector"]["matchLabels"], labels))
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        peers = [peer["podSelector"]["matchLabels"] for rule in policy["spec"]["ingress"] for peer in rule["from"]]
        assert any(chartlib.selector_matches(peer, web_labels) for peer in peers)
        others = [w for w in chartlib.workloads(docs) if w is not store and w["kind"] != "Deployment"]
        for peer in peers:
            assert not any(chartlib.selector_matches(peer, w["spec"]["template"]["metadata"]["labels"])
                           for w in others), "a store is open to a pod that is not webgatos"


@parametrize_scenarios
def test_kube_monkey_labels_follow_the_switch(scenario):
    deployment = app_deployment(scenario)
    settings = chartlib.chart_values(scenario)["kubeMonkey"]
    for labels in (deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"]):
        monkey = {key: value for key, value in labels.items() if key.startswith("kube-monkey/")}
        if not settings["enabled"]:
            assert monkey == {}
            continue
        assert monkey == {"kube-monkey/enabled": "enabled", "kube-monkey/identifier": deployment["metadata"]["name"],
                          "kube-monkey/mtbf": str(settings["mtbf"]), "kube-monkey/kill-mode": settings["killMode"],
                          "kube-monkey/kill-value": str(settings["killValue"])}


@pytest.mark.parametrize("scenario", WEBGATOS_SCENARIOS, ids=[s.id for s in WEBGATOS_SCENARIOS])
def test_istio_routes_point_at_the_service_and_never_mix_fault_with_retries(scenario):
    docs = chartlib.render(scenario)
    virtual_services = chartlib.by_kind(docs, "VirtualService")
    if not chartlib.chart_values(scenario)["istio"]["enabled"]:
        assert not virtual_services
        return
    service = chartlib.find(docs, "Service", f"{chartlib.RELEASE}-webgatos")
    fqdn = f"{service['metadata']['name']}.{chartlib.NAMESPACE}.svc.cluster.local"
    service_ports = {port["port"] for port in service["spec"]["ports"]}
    gateways = {doc["metadata"]["name"] for doc in chartlib.by_kind(docs, "Gateway")}
    assert any(fqdn in vs["spec"]["hosts"] for vs in virtual_services), "no VirtualService for the Service host"
    for vs in virtual_services:
        for gateway in vs["spec"].get("gateways", ["mesh"]):
            assert gateway == "mesh" or gateway in gateways
            if gateway == "mesh":
                assert "*" not in vs["spec"]["hosts"], "Istio rejects the * host on the mesh gateway"
        for route in vs["spec"]["http"]:
            assert not ("fault" in route and "retries" in route), f"{vs['metadata']['name']}: fault with retries"
            if route.get("retries", {}).get("attempts"):
                assert route["retries"]["retryOn"], "retryOn must be explicit (Istio 1.24 dropped 503)"
            for destination in route["route"]:
                assert destination["destination"]["host"] == fqdn
                assert destination["destination"]["port"]["number"] in service_ports
    rule = chartlib.by_kind(docs, "DestinationRule")[0]
    assert rule["spec"]["host"] == fqdn
    annotations = app_deployment(scenario)["spec"]["template"]["metadata"]["annotations"]
    assert annotations.get("sidecar.istio.io/proxyCPU"), "the injected sidecar needs a CPU request for the HPA"


@parametrize_scenarios
def test_helm_test_hook_checks_through_the_service(scenario):
    docs = chartlib.render(scenario)
    hooks = [doc for doc in docs if chartlib.is_hook(doc)]
    assert len(hooks) == 1 and hooks[0]["metadata"]["annotations"]["helm.sh/hook"] == "test"
    pod = hooks[0]
    assert pod["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    url = next(item["value"] for item in pod["spec"]["containers"][0]["env"] if item["name"].endswith("_URL"))
    parts = urlsplit(url)
    service = chartlib.find(docs, "Service", parts.hostname)
    assert service and parts.port in [port["port"] for port in service["spec"]["ports"]]
    assert pod["spec"]["containers"][0]["image"] == pod_spec(app_deployment(scenario))["containers"][0]["image"]
