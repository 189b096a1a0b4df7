"""The kubelet's endpoint of the lab's node, which metrics-server scrapes
(lab/kube/metrics_server.py): HTTPS on 127.0.0.1 (the Node's daemonEndpoints), client
certificates of the lab's CA only, as a kubelet authenticates x509 clients; /metrics/resource and
/healthz."""

import datetime
import ssl
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil

from lab.host.procs import free_port
from lab.host.proctree import process_tree_cpu_seconds, process_tree_rss_bytes
from lab.kube.node.pods import PodRun
from lab.kube.pki import CertificateAuthority


def cpu_seconds(run: PodRun) -> float:
    """CPU time the Pod's container used: its cgroup's accounting, else its process tree's."""
    if run.cgroup is not None:
        return run.cgroup.cpu_seconds()
    return process_tree_cpu_seconds(run.pid) if run.pid else 0.0


def resource_metrics(runs: list[PodRun]) -> str:
    """The kubelet's /metrics/resource (Prometheus text, stable metric names) for these runs."""
    now_ms = int(time.time() * 1000)
    labels = 'container="{c}",namespace="{n}",pod="{p}"'
    lines = ["# TYPE container_cpu_usage_seconds_total counter",
             "# TYPE container_memory_working_set_bytes gauge",
             "# TYPE container_start_time_seconds gauge"]
    for run in runs:
        if run.pid is None:
            continue
        ids = labels.format(c=run.container, n=run.namespace, p=run.name)
        memory = process_tree_rss_bytes(run.pid)
        started = datetime.datetime.strptime(run.started_at, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC).timestamp()
        lines += [f"container_cpu_usage_seconds_total{{{ids}}} {cpu_seconds(run):.6f} {now_ms}",
                  f"container_memory_working_set_bytes{{{ids}}} {memory} {now_ms}",
                  f"container_start_time_seconds{{{ids}}} {started:.0f}"]
    times = psutil.cpu_times()
    busy = times.user + times.system + getattr(times, "irq", 0) + getattr(times, "softirq", 0)
    memory = psutil.virtual_memory()
    lines += ["# TYPE node_cpu_usage_seconds_total counter", f"node_cpu_usage_seconds_total {busy:.3f} {now_ms}",
              "# TYPE node_memory_working_set_bytes gauge",
              f"node_memory_working_set_bytes {memory.total - memory.available} {now_ms}",
              "# TYPE resource_scrape_error gauge", "resource_scrape_error 0"]
    return "\n".join(lines) + "\n"


class KubeletEndpoint:
    """Serves `metrics()` (the node's resource metrics text) for node `node_name` on `port`."""

    def __init__(self, ca: CertificateAuthority, node_name: str, metrics: Callable[[], str]):
        self.ca, self.node_name, self.metrics = ca, node_name, metrics
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        serving = self.ca.issue(f"kubelet-{self.node_name}", f"system:node:{self.node_name}",
                                server_names=["127.0.0.1", self.node_name], client=False)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(serving.cert), str(serving.key))
        context.load_verify_locations(cafile=str(self.ca.cert_path))
        context.verify_mode = ssl.CERT_REQUIRED
        metrics = self.metrics

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] == "/metrics/resource":
                    body, kind = metrics().encode(), "text/plain; version=0.0.4"
                elif self.path == "/healthz":
                    body, kind = b"ok", "text/plain"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="kubelet-endpoint", daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
