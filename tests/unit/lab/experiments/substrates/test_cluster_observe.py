"""What the cluster substrate's Prometheus scrapes, built from a kubeconfig and a Pod list (no
process, no cluster): credentials as private files, targets through the API server's Pod proxy,
and the signals each case is judged on."""

import base64
import ssl
from pathlib import Path

import pytest
import yaml

from lab.experiments import cases, slo
from lab.experiments.substrates import cluster_observe as observe
from lab.observe.prometheus import render_config

TABLE = cases.table()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(user: dict, server: str = "https://10.250.0.1:6443", **cluster) -> dict:
    return {"clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
            "users": [{"name": "u", "user": user}], "contexts": [{"name": "host-x"}]}


def test_a_client_certificate_becomes_private_files(tmp_path):
    config = kubeconfig({"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")},
                        **{"certificate-authority-data": b64("CA")})
    credentials = observe.api_credentials(config, tmp_path / "tls")
    files = credentials.prometheus
    assert set(files) == {"ca_file", "cert_file", "key_file"}
    assert [Path(files[key]).read_text() for key in ("ca_file", "cert_file", "key_file")] == ["CA", "CERT", "KEY"]
    assert all(oct((tmp_path / "tls" / name).stat().st_mode & 0o777) == "0o600"
               for name in ("ca.crt", "client.crt", "client.key"))
    assert oct((tmp_path / "tls").stat().st_mode & 0o777) == "0o700"
    assert credentials.headers == {}
    assert render_config(tmp_path, "1s", files)["scrape_configs"][1]["tls_config"] == files


def test_a_token_is_a_bearer_file_and_header(tmp_path):
    credentials = observe.api_credentials(kubeconfig({"token": "s3cret"}, **{"insecure-skip-tls-verify": True}),
                                          tmp_path)
    assert Path(credentials.prometheus["token_file"]).read_text() == "s3cret"
    assert credentials.prometheus["insecure_skip_verify"] is True
    assert credentials.headers == {"Authorization": "Bearer s3cret"}
    assert credentials.ssl_context().verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("config, message", [
    (kubeconfig({"exec": {"command": "gke-gcloud-auth-plugin"}}), "authenticates with `exec`"),
    (kubeconfig({"token": "t"}, server="http://127.0.0.1:8080"), "is not https"),
    (kubeconfig({"username": "admin", "password": "x"}), "neither a client certificate nor a token"),
    ({"clusters": []}, "names no cluster server")])
def test_what_prometheus_cannot_present_is_refused_in_one_line(tmp_path, config, message):
    with pytest.raises(observe.ObserveError, match=message) as refused:
        observe.api_credentials(config, tmp_path)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("server, address, prefix", [
    ("https://10.250.0.1:6443", "10.250.0.1:6443", ""),
    ("https://kube.example:443/k8s/clusters/c-1/", "kube.example:443", "/k8s/clusters/c-1"),
    ("https://[::1]:6443", "[::1]:6443", ""),
    ("https://kube.example", "kube.example:443", "")])
def test_the_target_is_the_api_servers_host_and_port(server, address, prefix):
    credentials = observe.ApiCredentials(server)
    assert (credentials.address, credentials.prefix) == (address, prefix)


def pod(name: str, phase: str = "Running", deleting: bool = False, ready: bool = True) -> dict:
    metadata = {"namespace": "rl-redis-2", "name": name, **({"deletionTimestamp": "now"} if deleting else {})}
    return {"metadata": metadata, "status": {"phase": phase,
                                             "conditions": [{"type": "Ready", "status": str(ready)}]}}


def test_running_pods_are_scraped_through_the_pod_proxy_labelled_with_the_case():
    credentials = observe.ApiCredentials("https://10.250.0.1:6443")
    pods = [pod("webgatos-b"), pod("webgatos-a", ready=False), pod("webgatos-old", deleting=True),
            pod("webgatos-new", phase="Pending")]
    groups = observe.pod_groups(pods, credentials, "webgatos", 8080, "/metrics", {"case": "redis-2"})
    assert groups == [
        {"targets": ["10.250.0.1:6443"],
         "labels": {"case": "redis-2", "namespace": "rl-redis-2", "pod": name, "job": "webgatos",
                    "__metrics_path__": f"/api/v1/namespaces/rl-redis-2/pods/{name}:8080/proxy/metrics"}}
        for name in ("webgatos-a", "webgatos-b")]
    assert [observe.ready(p) for p in pods[:2]] == [True, False]


def test_the_pod_list_asks_for_the_selector():
    assert observe.pods_path("istio-ingress", observe.selector_of({"istio": "ingressgateway", "app": "gw"})) == \
        "/api/v1/namespaces/istio-ingress/pods?labelSelector=app%3Dgw%2Cistio%3Dingressgateway"


@pytest.mark.parametrize("case", [c for c in TABLE.cases if c.workload == "sessions"], ids=lambda c: c.name)
def test_each_case_is_judged_where_its_requests_enter(case):
    signals = observe.signals_of(case)
    labels = {"case": case.name}
    queries = [query(signals, labels, 10) for query in slo.QUERIES.values()]
    assert all(f'case="{case.name}"' in query for query in queries)
    assert 'deployment="webgatos"' in slo.min_replicas_query(signals, labels, 10)
    availability = slo.availability_query(signals, labels, 10)
    if case.mesh:  # Istio's ingress gateway, its listener's stats only
        assert 'envoy_http_downstream_rq{job="gateway",http_conn_manager_prefix=~"outbound_.*",' \
               'response_code_class="5xx"' in availability
    else:  # the Service: webgatos counts each request itself
        assert "http_requests_total{" in availability and 'status=~"5.."' in availability


def test_a_context_prometheus_cannot_use_gives_unknown_with_the_reason_never_a_pass(tmp_path, capsys):
    from lab.experiments.substrates.cluster import ClusterSubstrate
    from lab.experiments.substrates.cluster_kube import Kube
    pinned = tmp_path / "kubeconfig"
    pinned.write_text(yaml.safe_dump(kubeconfig({"exec": {"command": "aws"}})))
    cluster = ClusterSubstrate("eks-x", tmp_path / "out")
    cluster.kube, cluster.private = Kube("eks-x", pinned), tmp_path / "private"
    assert cluster.start_prometheus() is None and cluster.start_prometheus() is None  # tried once, said once
    assert capsys.readouterr().out.count("Prometheus did not start: the kubeconfig's user authenticates with") == 1
    case = TABLE.by_name("redis-2")
    judged = cluster.judged(None, case, slo.hypothesis_of(case), {"baseline": [0, 5], "recovery": [5, 15]}, "")
    assert judged["verdict"] == "unknown" and judged["notes"][0].startswith("no Prometheus: the kubeconfig's user")


def test_the_autoscale_case_is_judged_on_sqrts_own_counters_and_deployment():
    case = TABLE.by_name("autoscale")
    signals = observe.signals_of(case)
    labels = {"case": case.name}
    assert signals.sessions_lost is None  # sqrt keeps no sessions
    assert 'deployment="sqrt"' in slo.min_replicas_query(signals, labels, 10)
    assert 'http_requests_total{endpoint=~"/|/api/session",status=~"5.."' in slo.availability_query(signals, labels, 10)
