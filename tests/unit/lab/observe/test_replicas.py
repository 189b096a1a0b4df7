"""The replica exporter: kube-state-metrics' names from the API server's Deployments and HPAs,
and no numbers at all when the API server does not answer."""

from prometheus_client import CollectorRegistry, generate_latest

from lab.observe.replicas import DEPLOYMENTS, HPAS, ReplicaCollector

OBJECTS = {
    DEPLOYMENTS: {"items": [
        {"metadata": {"namespace": "demo", "name": "webgatos"}, "spec": {"replicas": 2},
         "status": {"readyReplicas": 1}},
        {"metadata": {"namespace": "other", "name": "x"}, "spec": {"replicas": 3}, "status": {}}]},
    HPAS: {"items": [{"metadata": {"namespace": "demo", "name": "sqrt"},
                      "status": {"desiredReplicas": 4, "currentReplicas": 2}}]},
}


def exposition(collector) -> str:
    registry = CollectorRegistry()
    registry.register(collector)
    return generate_latest(registry).decode()


def test_ready_and_desired_replicas_of_the_namespace():
    text = exposition(ReplicaCollector(OBJECTS.__getitem__, ("demo",)))
    assert 'kube_deployment_status_replicas_ready{deployment="webgatos",namespace="demo"} 1.0' in text
    assert 'kube_deployment_spec_replicas{deployment="webgatos",namespace="demo"} 2.0' in text
    assert 'kube_horizontalpodautoscaler_status_desired_replicas{horizontalpodautoscaler="sqrt",namespace="demo"} 4.0' \
        in text
    assert 'namespace="other"' not in text
    assert "lab_replica_exporter_errors 0.0" in text


def test_a_deployment_without_ready_replicas_counts_zero():
    text = exposition(ReplicaCollector(OBJECTS.__getitem__))
    assert 'kube_deployment_status_replicas_ready{deployment="x",namespace="other"} 0.0' in text


def test_an_unreachable_api_server_gives_no_replica_numbers():
    def refuse(path):
        raise OSError("connection refused")
    text = exposition(ReplicaCollector(refuse))
    assert "lab_replica_exporter_errors 1.0" in text
    assert "kube_deployment_status_replicas_ready{" not in text



def test_the_api_fetcher_sends_the_headers_and_reads_json():
    """A real HTTP server on loopback stands in for the API server (TLS is the context's part)."""
    import http.server
    import threading

    from lab.observe.replicas import https_fetcher
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.update(path=self.path, auth=self.headers.get("Authorization"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"items": []}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        fetch = https_fetcher(f"http://127.0.0.1:{server.server_port}/", None, {"Authorization": "Bearer t"})
        assert fetch(DEPLOYMENTS) == {"items": []}
    finally:
        thread.join(timeout=5)
        server.server_close()
    assert seen == {"path": DEPLOYMENTS, "auth": "Bearer t"}
