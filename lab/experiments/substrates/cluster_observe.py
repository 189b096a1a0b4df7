"""What the cluster substrate's Prometheus scrapes during one case, through the API server's Pod
proxy, so it works on any cluster the kubeconfig reaches (host cluster, kind, minikube) without
Pod IPs being routable from this machine:

    credentials = api_credentials(kube.config(), private / "prometheus-tls")
    prometheus = Prometheus(private / "prometheus", kube_api=credentials.prometheus).start()
    with watching(prometheus, credentials, namespace, case):       # Pods followed every second
        ...                                                         # load, chaos
        slo.judge(prometheus.client(), hypothesis, phases, {"case": case.name}, signals_of(case))

Targets (each labelled case=<name>, namespace, pod): every webgatos Pod's /metrics at
https://APISERVER/api/v1/namespaces/NS/pods/POD:8080/proxy/metrics (with a sidecar, istio-agent's
merged app metrics on 15020, which mutual TLS leaves reachable: meshConfig enablePrometheusMerge),
for a mesh case Istio's ingress
gateway's Envoy (/stats/prometheus on 15090), and the case namespace's replica gauges
(lab/observe/replicas.py, read from the same API server). The credentials are the kubeconfig
context's own (client certificate, or bearer token), written as files in the substrate's private
folder, never under reports/.
"""

import base64
import ssl
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lab.experiments import slo
from lab.experiments.substrates.cluster_chaos import TARGET_SELECTOR
from lab.kube.mesh.gateway import GATEWAY_LABELS, GATEWAY_NAMESPACE
from lab.observe.follower import TargetFollower
from lab.observe.prometheus import Prometheus, target_group
from lab.observe.replicas import ReplicaExporter, https_fetcher

APP_PORT, APP_PATH = 8080, "/metrics"
# istio-agent serves the app's /metrics merged with its sidecar's stats (prometheus.io/* annotations,
# which the chart sets): the app's own port takes mutual TLS only.
MERGED_PORT, MERGED_PATH = 15020, "/stats/prometheus"
GATEWAY_PORT, GATEWAY_PATH = 15090, "/stats/prometheus"
FOLLOW_INTERVAL = 1.0
SCRAPED_TIMEOUT = 45.0  # file_sd's 5 s throttle, then a scrape through the API server
FILE_MODE = 0o600


class ObserveError(RuntimeError):
    """The cluster cannot be scraped as configured; str() is one line."""


@dataclass
class ApiCredentials:
    """The API server of a kubeconfig context and its credentials as files (for Prometheus) and as
    an SSL context and headers (for this process's reads)."""
    server: str
    prometheus: dict = field(default_factory=dict)  # render_config's kube_api
    headers: dict = field(default_factory=dict)

    @property
    def address(self) -> str:
        """host:port of the server, Prometheus' target."""
        parsed = urllib.parse.urlsplit(self.server)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host = f"[{parsed.hostname}]" if ":" in (parsed.hostname or "") else parsed.hostname
        return f"{host}:{port}"

    @property
    def prefix(self) -> str:
        """A path the server is reached under (a proxy in front of the API server), or ""."""
        return urllib.parse.urlsplit(self.server).path.rstrip("/")

    def ssl_context(self) -> ssl.SSLContext:
        files = self.prometheus
        context = ssl.create_default_context(cafile=files.get("ca_file"))
        if files.get("insecure_skip_verify"):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if files.get("cert_file"):
            context.load_cert_chain(files["cert_file"], files["key_file"])
        return context

    def fetcher(self, timeout: float = 3.0) -> Callable[[str], dict]:
        return https_fetcher(self.server, self.ssl_context(), self.headers, timeout)


def api_credentials(config: dict, folder: Path) -> ApiCredentials:
    """The one context of a minified, flattened kubeconfig (`kubectl config view --minify
    --flatten`): its server, and its CA, client certificate and key or token written to `folder`
    (mode 0600). ObserveError for what Prometheus cannot present (exec plugins, auth providers)."""
    try:
        cluster = config["clusters"][0]["cluster"]
        user = (config.get("users") or [{}])[0].get("user") or {}
        server = cluster["server"]
    except (KeyError, IndexError, TypeError):
        raise ObserveError("the kubeconfig names no cluster server") from None
    if urllib.parse.urlsplit(server).scheme != "https":
        raise ObserveError(f"the API server {server} is not https: Prometheus scrapes through it with TLS only")
    for unsupported in ("exec", "auth-provider"):
        if user.get(unsupported):
            raise ObserveError(f"the kubeconfig's user authenticates with `{unsupported}`, which Prometheus cannot "
                               "run: use a context with a client certificate or a token")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    files: dict = {}
    headers: dict = {}

    def write(name: str, data: str) -> str:
        path = folder / name
        path.touch(mode=FILE_MODE)
        path.chmod(FILE_MODE)
        path.write_bytes(base64.b64decode(data))
        return str(path)

    if cluster.get("certificate-authority-data"):
        files["ca_file"] = write("ca.crt", cluster["certificate-authority-data"])
    if cluster.get("insecure-skip-tls-verify"):
        files["insecure_skip_verify"] = True
    if cluster.get("tls-server-name"):
        files["server_name"] = cluster["tls-server-name"]
    if user.get("client-certificate-data") and user.get("client-key-data"):
        files["cert_file"] = write("client.crt", user["client-certificate-data"])
        files["key_file"] = write("client.key", user["client-key-data"])
    if user.get("token"):
        path = folder / "token"
        path.touch(mode=FILE_MODE)
        path.write_text(user["token"])
        files["token_file"] = str(path)
        headers["Authorization"] = f"Bearer {user['token']}"
    if not ({"cert_file", "token_file"} & set(files)):
        raise ObserveError("the kubeconfig's user has neither a client certificate nor a token for Prometheus")
    return ApiCredentials(server, files, headers)


def proxy_path(namespace: str, pod: str, port: int, path: str, prefix: str = "") -> str:
    """The API server's proxy to `path` on `port` of a Pod."""
    return f"{prefix}/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}"


def scrapable(pod: dict) -> bool:
    """A Pod that runs (killed Pods go; their replacements come): ready or not, a dead replica
    shows as up == 0 while the kubelet restarts it."""
    return (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")


def ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def pod_groups(pods: list[dict], credentials: ApiCredentials, job: str, port: int, path: str,
               labels: dict[str, str]) -> list[dict]:
    """A target group per running Pod: the API server as target, its Pod proxy as the path."""
    groups = []
    for pod in sorted((p for p in pods if scrapable(p)), key=lambda p: p["metadata"]["name"]):
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        groups.append(target_group(job, [credentials.address],
                                   proxy_path(namespace, name, port, path, credentials.prefix),
                                   {**labels, "namespace": namespace, "pod": name}))
    return groups


def pods_path(namespace: str, selector: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods?{urllib.parse.urlencode({'labelSelector': selector})}"


class PodFollower(TargetFollower):
    """JOB's targets: a namespace's Pods as the cluster's API server lists them, re-listed every
    second, each scraped through the API server's Pod proxy."""

    def __init__(self, prometheus: Prometheus, credentials: ApiCredentials, namespace: str, selector: str,
                 job: str, port: int, path: str, labels: dict[str, str]):
        super().__init__(prometheus, job, FOLLOW_INTERVAL, kube_api=True)
        self.credentials, self.namespace, self.selector = credentials, namespace, selector
        self.port, self.path, self.labels = port, path, labels
        self.fetch = credentials.fetcher()
        self.pods: list[dict] = []

    def groups(self) -> list[dict]:
        self.pods = self.fetch(pods_path(self.namespace, self.selector)).get("items") or []
        return pod_groups(self.pods, self.credentials, self.job, self.port, self.path, self.labels)


def selector_of(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


@contextmanager
def watching(prometheus: Prometheus, credentials: ApiCredentials, namespace: str, case,
             selector: str = TARGET_SELECTOR, timeout: float = SCRAPED_TIMEOUT) -> Iterator[Prometheus]:
    """Scrape case `case` (lab/experiments/cases.py) in `namespace` until the block ends: its
    chart's Pods (`selector`) as job `case.chart`; it starts once every job has been scraped.
    Judge inside the block: leaving it drops the targets."""
    labels, job = {"case": case.name}, case.chart
    port, path = (MERGED_PORT, MERGED_PATH) if case.mesh else (APP_PORT, APP_PATH)
    with ExitStack() as stack:
        pods = stack.enter_context(PodFollower(prometheus, credentials, namespace, selector, job, port, path,
                                               labels))
        if case.mesh:
            stack.enter_context(PodFollower(prometheus, credentials, GATEWAY_NAMESPACE, selector_of(GATEWAY_LABELS),
                                            "gateway", GATEWAY_PORT, GATEWAY_PATH, labels))
        exporter = stack.enter_context(ReplicaExporter(credentials.fetcher(), (namespace,)))
        prometheus.set_targets("replicas", [exporter.address], labels=labels)
        stack.callback(prometheus.set_targets, "replicas", [])
        waits = ((job, sum(1 for pod in pods.pods if ready(pod))), ("gateway", int(bool(case.mesh))), ("replicas", 1))
        for name, count in waits:
            if count:
                prometheus.wait_scraped(name, count, timeout)
        yield prometheus


def ready_replicas(deployment: str) -> slo.Selector:
    """The case's own Deployment: a Redis next to it must not count as a replica."""
    return slo.Selector("kube_deployment_status_replicas_ready", (f'deployment="{deployment}"',))


def istio_gateway_signals(deployment: str) -> slo.Signals:
    """Istio's ingress gateway Envoy (its /stats/prometheus on 15090). Istio's bootstrap tags a
    listener's stat prefix ("outbound_0.0.0.0_80;") as http_conn_manager_prefix and a response's
    class ("downstream_rq_5xx") as response_code_class (Istio's tag names, without Envoy's
    `envoy_`), so the names are Envoy's plain ones; its own listeners ("stats", "agent", "admin")
    keep theirs in the name. Istio exposes these stats only where the mesh's proxyStatsMatcher
    includes them (istio/install/istiod-values.yaml)."""
    where = ('job="gateway"', 'http_conn_manager_prefix=~"outbound_.*"')
    return slo.Signals(requests=slo.Selector("envoy_http_downstream_rq_total", where),
                       errors=slo.Selector("envoy_http_downstream_rq", (*where, 'response_code_class="5xx"')),
                       latency_buckets=slo.Selector("envoy_http_downstream_rq_time_bucket", where),
                       latency_ms=1.0, ready_replicas=ready_replicas(deployment))


def signals_of(case) -> slo.Signals:
    """Where a case's requests enter: Istio's ingress gateway (a mesh profile), else the Service,
    whose replicas count each request themselves (webgatos' and sqrt's http_requests_total, both
    on endpoint "/"); sqrt keeps no sessions."""
    if case.mesh:
        return istio_gateway_signals(case.chart)
    app = slo.APP_SIGNALS
    return slo.Signals(requests=app.requests, errors=app.errors, latency_buckets=app.latency_buckets,
                       latency_ms=app.latency_ms,
                       sessions_lost=app.sessions_lost if case.workload == "sessions" else None,
                       ready_replicas=ready_replicas(case.chart))
