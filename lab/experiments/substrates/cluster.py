"""The `cluster:<context>` substrate: a demo case on a real cluster (kind, minikube, or the host
cluster of `make cluster-up CLUSTER=host`) through a kubeconfig context, as a person would run it,
every kubectl and helm command printed before it runs:

    kubectl create namespace rl-CASE; kubectl label namespace ... (PodSecurity restricted, and
        istio-injection=enabled for a mesh profile)
    helm upgrade --install webgatos charts/webgatos -f <the store's ci values> --set replicaCount=N
        [-f istio/scenarios/MESH.yaml | -f scripts/cluster/values/per-request-balancing.yaml] --wait
    kubectl create configmap loadtest-files --from-file=loadtests/; kubectl apply -f <Locust Job>
    python -m chaos k8s ... (with its own ServiceAccount's token only, cluster_chaos.py)
    kubectl logs job/loadtest  -> Locust's summary -> the lab's record keys (cluster_load.py)
    Prometheus (one on this machine for the run) judges the case's hypothesis per phase,
        scraping its Pods through the API server's proxy (cluster_observe.py)
    helm uninstall; kubectl delete namespace

Load reaches the Service (no mesh) or Istio's ingress gateway (a mesh profile) from inside the
cluster (cluster_job.py). The autoscale case is cluster_autoscale.py. The commands run on a private
kubeconfig that holds the one context (cluster_kube.py), so nothing reaches another cluster by
accident.
"""

import json
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import yaml

from lab.experiments import demo, slo
from lab.experiments.cases import Case
from lab.experiments.substrates import CaseInputError, cluster_autoscale, phases
from lab.experiments.substrates import cluster_chaos as chaos
from lab.experiments.substrates import cluster_job as job
from lab.experiments.substrates import cluster_load as load
from lab.experiments.substrates import cluster_observe as observe
from lab.experiments.substrates.cluster_kube import HELM_TIMEOUT, Kube, KubeError, kubectl_binary, kubectl_env, shown
from lab.host import binaries
from lab.host.paths import CHARTS, REPO_ROOT, SCENARIO_DIR
from lab.host.procs import ProcessGroup
from lab.kube.controlplane import RESTRICTED_LABELS
from lab.kube.mesh.istiod import ISTIO_NAMESPACE
from lab.observe.prometheus import Prometheus
from lab.workloads import istio
from lab.workloads.topology import HAZELCAST_MEMBERS

NAMESPACE_PREFIX = "rl-"
ISTIOD = "istiod"
GATEWAY_URL = "http://istio-ingressgateway.istio-ingress.svc.cluster.local"
STORE_VALUES = {"memory": CHARTS / "webgatos" / "ci" / "memory-2-replicas-values.yaml",
                "redis": CHARTS / "webgatos" / "ci" / "redis-values.yaml",
                "hazelcast": CHARTS / "webgatos" / "ci" / "hazelcast-values.yaml"}
# Without a mesh a Service balances connections: a Locust user would keep its first replica and
# a memory store would look fine by accident (see the file).
PER_REQUEST_VALUES = REPO_ROOT / "scripts" / "cluster" / "values" / "per-request-balancing.yaml"
JOB_MARGIN = 90  # after Locust's own end (arrival + drain): its summary printed and the Job marked done
REACH_TIMEOUT = 10


def namespace_of(case: Case, prefix: str = NAMESPACE_PREFIX) -> str:
    return f"{prefix}{case.name}"[:63].rstrip("-")


def namespace_labels(case: Case) -> dict[str, str]:
    """PodSecurity `restricted`, as every demo namespace; sidecar injection for a mesh profile."""
    return {**RESTRICTED_LABELS, **({"istio-injection": "enabled"} if case.mesh else {})}


def release_args(case: Case) -> list[str]:
    """`helm upgrade --install` arguments after the chart: the store's ci values, the replicas,
    the mesh profile (or per-request balancing on the Service) and the case's own values."""
    args = ["-f", shown(STORE_VALUES[case.store]), "--set", f"replicaCount={case.replicas}"]
    if case.store == "redis":  # the demo needs no disk: Redis goes with the namespace anyway
        args += ["--set", "sessionStore.redis.persistence.enabled=false"]
    if case.store == "hazelcast":  # as many members as the lab runs
        args += ["--set", f"sessionStore.hazelcast.replicas={HAZELCAST_MEMBERS}"]
    if case.mesh:  # the profile, and mutual TLS required between sidecars (Istio's gateway has its own proxy)
        args += ["-f", shown(SCENARIO_DIR / f"{case.mesh}.yaml"), "--set", "istio.peerAuthentication.enabled=true"]
    else:
        args += ["-f", shown(PER_REQUEST_VALUES)]
    for key, value in case.values.items():
        args += ["--set-json", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return args


def target_url(case: Case, namespace: str) -> str:
    """Where in-cluster load enters: the release's Service, or Istio's ingress gateway."""
    return GATEWAY_URL if case.mesh else f"http://{case.chart}.{namespace}.svc.cluster.local"


def cluster_up_hint(context: str) -> str:
    """The make command that creates `context` (the names cluster-up gives: host-NAME, kind-NAME,
    minikube's NAME)."""
    for prefix, cluster in (("host-", "host"), ("kind-", "kind")):
        if context.startswith(prefix):
            return f"make cluster-up CLUSTER={cluster}"
    return "make cluster-up"


class ClusterSubstrate:
    """Demo cases on `context` of `kubeconfig` (default: $KUBECONFIG or ~/.kube/config, and its
    current context). Case NAME runs in namespace `namespace_prefix`NAME, removed after the case
    unless `keep`. Constructing it changes nothing and contacts no cluster."""

    def __init__(self, context: str | None = None, workdir: Path | None = None, *, kubeconfig: Path | None = None,
                 keep: bool = False, namespace_prefix: str = NAMESPACE_PREFIX, seconds: float | None = None):
        self.kubeconfig = Path(kubeconfig) if kubeconfig else None
        self.context = context or self._current_context()
        self.name = f"cluster:{self.context}"
        self.workdir = Path(workdir) if workdir else None
        self.keep, self.prefix, self.seconds = keep, namespace_prefix, seconds
        self.notes: list[str] = []  # how the load and chaos ran (the report's header), set by check()
        self.kube: Kube | None = None
        self.private: Path | None = None  # the pinned kubeconfig's folder (it holds credentials)
        self.prometheus: Prometheus | None = None  # started with the first case that states a hypothesis
        self.prometheus_error = ""
        self.credentials: observe.ApiCredentials | None = None

    def _current_context(self) -> str:
        try:
            result = subprocess.run([kubectl_binary(), "config", "current-context"], capture_output=True, text=True,
                                    env=kubectl_env(self.kubeconfig), timeout=30, stdin=subprocess.DEVNULL)
        except (binaries.MissingBinary, OSError, subprocess.TimeoutExpired):
            return ""
        return result.stdout.strip() if result.returncode == 0 else ""

    # The protocol

    def check(self, cases: list[Case]) -> None:
        """Before any change: the tools, the context (there and answering), Istio for mesh cases."""
        try:
            kubectl_binary()
            binaries.helm()
        except binaries.MissingBinary as missing:
            raise CaseInputError(str(missing)) from None
        if not self.context:
            raise CaseInputError("no current kube context: run `make cluster-up`, or name one with KUBE_CONTEXT=")
        try:
            self.private = self.private or Path(tempfile.mkdtemp(prefix="rl-kube-"))
            self.kube = Kube.pin(self.context, self.kubeconfig, self.private)
        except KubeError:
            raise CaseInputError(f"kube context {self.context!r} not found: run `{cluster_up_hint(self.context)}`, "
                                 "or name an existing context with KUBE_CONTEXT=") from None
        try:
            ready = self.kube.kubectl("get", "--raw", "/readyz", quiet=True, check=False, timeout=REACH_TIMEOUT)
        except subprocess.TimeoutExpired:
            ready = None
        if ready is None or ready.returncode != 0:
            raise CaseInputError(f"kube context {self.context!r} does not answer ({self.server()}): "
                                 f"run `{cluster_up_hint(self.context)}`")
        self.notes = [*(demo.load_notes(self.seconds, chaos.SIGNAL) if self.seconds else []), (
            f"context {self.context} ({self.server()}): each case in namespace {self.prefix}CASE; Locust runs "
            "there as a Job against the Service (or Istio's ingress gateway); the chaos tool acts with its "
            "own ServiceAccount's token (chaos/deploy/rbac.yaml)")]
        meshed = [case.name for case in cases if case.mesh]
        if meshed and not self.istio_installed():
            raise CaseInputError(f"{', '.join(meshed)} need{'s' if len(meshed) == 1 else ''} Istio, which context "
                                 f"{self.context!r} does not have (no {ISTIOD} in {ISTIO_NAMESPACE}): "
                                 "run `make istio-install`")

    def server(self) -> str:
        clusters = (self.kube.config() if self.kube else {}).get("clusters") or [{}]
        return clusters[0].get("cluster", {}).get("server", "?")

    def istio_installed(self) -> bool:
        """istiod available on the context (lab/workloads/istio.py, which takes the pinned kubectl;
        without it, any kubectl asks the API)."""
        try:
            return istio.installed(self.kube.env())
        except binaries.MissingBinary:
            found = self.kube.kubectl("get", "deployment", ISTIOD, "--namespace", ISTIO_NAMESPACE, "--ignore-not-found",
                                      "-o", "jsonpath={.status.availableReplicas}", quiet=True, check=False)
            return found.stdout.strip().isdigit() and int(found.stdout) >= 1

    def run(self, case: Case, seconds: float, workdir: Path, echo: Callable[[str], None]) -> dict:
        if self.kube is None:
            self.check([case])
        self.kube.echo = echo
        workdir.mkdir(parents=True, exist_ok=True)
        namespace = namespace_of(case, self.prefix)
        record = {"name": case.name, "kind": case.workload, "store": case.store, "replicas": case.replicas,
                  "retries": case.retries, "chaos": case.chaos, "shows": case.shows, "mesh": case.mesh,
                  "seconds": seconds, "substrate": self.name, "namespace": namespace}
        self.create_namespace(case, namespace)
        try:
            if case.workload == "autoscale":
                record.update(cluster_autoscale.run(self, case, namespace, seconds, workdir, echo))
            else:
                record.update(self.run_sessions(case, namespace, seconds, workdir, echo))
        finally:
            if self.keep:
                print(f"  KEEP: namespace {namespace} stays; `kubectl delete namespace {namespace}` removes it",
                      flush=True)
            else:
                self.remove(namespace, case.chart)
        return record

    def close(self) -> None:
        """Each case removed its own namespace; what is left is Prometheus and the private folder."""
        if self.prometheus is not None:
            self.prometheus.stop()
            self.prometheus = None
        if self.private is not None:
            shutil.rmtree(self.private, ignore_errors=True)
            self.private, self.kube = None, None

    # Steps

    def create_namespace(self, case: Case, namespace: str) -> None:
        """A fresh namespace: one an earlier run left (KEEP=1, or killed) goes first."""
        kube = self.kube
        if kube.kubectl("get", "namespace", namespace, quiet=True, check=False).returncode == 0:
            kube.kubectl("delete", "namespace", namespace, "--wait=true", "--timeout=180s", timeout=200)
        kube.kubectl("create", "namespace", namespace)
        kube.kubectl("label", "namespace", namespace, "--overwrite",
                     *(f"{key}={value}" for key, value in namespace_labels(case).items()))

    def install(self, namespace: str, release: str, chart: Path, args: list[str]) -> None:
        try:
            self.kube.helm("upgrade", "--install", release, shown(chart), "--namespace", namespace, "--reset-values",
                           "--wait", "--timeout", f"{HELM_TIMEOUT}s", *args)
        except KubeError as error:
            raise KubeError(f"{error}\n{self.kube.explain(namespace)}") from None

    def run_sessions(self, case: Case, namespace: str, seconds: float, workdir: Path,
                     echo: Callable[[str], None]) -> dict:
        self.install(namespace, case.chart, CHARTS / case.chart, release_args(case))
        sidecars = self.sidecars(namespace) if case.mesh else None
        with ExitStack() as observed:
            judge = self.observing(observed, case, namespace)
            record = self.measure(case, namespace, seconds, workdir, echo, sidecars)
            judge(record)
        return record

    def observing(self, stack: ExitStack, case: Case, namespace: str,
                  selector: str = chaos.TARGET_SELECTOR) -> Callable[[dict], None]:
        """Scrape the case's Pods (`selector`) until `stack` closes; the function it returns judges
        a record (with its phases) by the case's hypothesis, into record["slo"]. A case without
        a hypothesis is neither scraped nor judged."""
        hypothesis = slo.hypothesis_of(case)
        prometheus, reason = self.start_prometheus() if hypothesis else None, ""
        if prometheus is not None:
            try:
                stack.enter_context(observe.watching(prometheus, self.credentials, namespace, case, selector))
            except (observe.ObserveError, TimeoutError, OSError, ValueError) as error:
                prometheus, reason = None, _one_line(error)
                print(f"  Prometheus cannot scrape {case.name}: {reason}", flush=True)

        def judge(record: dict) -> None:
            if hypothesis:
                record["slo"] = self.judged(prometheus, case, hypothesis, record["phases"], reason)
                record["slo"]["disagreements"] = slo.disagreements(record, record["slo"])
        return judge

    def measure(self, case: Case, namespace: str, seconds: float, workdir: Path, echo: Callable[[str], None],
                sidecars: dict | None) -> dict:
        """Load (and chaos) on the installed release: the record, with its phases."""
        interval = demo.chaos_interval(seconds)
        chaos_config = self.chaos_kubeconfig(namespace, workdir) if case.chaos else None
        job.start(self.kube, namespace, load.arrival_args(target_url(case, namespace), seconds), workdir)
        with ProcessGroup(workdir / "logs") as group:
            killer, chaos_summary, chaos_run = None, workdir / "chaos-summary.json", {}
            if chaos_config is not None:
                argv = chaos.chaos_argv(chaos_config, namespace, interval, seconds, chaos_summary)
                echo(f"python {shlex.join(argv[1:])}")
                killer = group.start("chaos", argv, env=kubectl_env(chaos_config), cwd=REPO_ROOT)
            job.wait(self.kube, namespace, seconds + demo.DRAIN_SECONDS + JOB_MARGIN, seconds, case.name,
                     lambda: _kills_so_far(killer))
            if killer is not None:
                killer.stop(grace=10)  # SIGTERM: the tool writes its summary and exits
                chaos_run = read_json(chaos_summary)
                if not chaos_run or chaos_run.get("error"):
                    raise RuntimeError(f"the chaos tool failed: {chaos_run.get('error') or 'no summary'}\n"
                                       f"{killer.log_tail()}")
        summary = job.output(self.kube, namespace, workdir)[load.SUMMARY]
        if not summary.get("requests"):
            raise RuntimeError(f"Locust made no request against {target_url(case, namespace)} "
                               f"(log: {shown(workdir / 'locust.log')})")
        kills = chaos.killed(chaos_run) if case.chaos else []
        record = load.session_record(summary, kills)
        if sidecars is not None:
            record["pods_with_istio_proxy"] = sidecars
        started = summary.get("started_at", time.time())
        record["started_at"] = started
        record["phases"] = phases(started, started + summary.get("duration_s", seconds),
                                  [kill["epoch"] for kill in kills])
        if case.chaos:
            record.update(chaos_interval_s=interval, chaos_signal=chaos.SIGNAL, chaos_summary=chaos_run)
        return record

    def start_prometheus(self) -> Prometheus | None:
        """One Prometheus on this machine for the run, scraping through the context's API server
        with its credentials (files in the private folder); None, saying why once, when it cannot."""
        if self.prometheus is None and not self.prometheus_error:
            try:
                self.credentials = observe.api_credentials(self.kube.config(), self.private / "prometheus-tls")
                self.prometheus = Prometheus(self.private / "prometheus", kube_api=self.credentials.prometheus).start()
            except (observe.ObserveError, binaries.MissingBinary, RuntimeError, TimeoutError, OSError,
                    ValueError) as error:
                self.prometheus_error = _one_line(error)
                print(f"  Prometheus did not start: {self.prometheus_error}", flush=True)
                return None
            print(f"  Prometheus (UI and query API): {self.prometheus.url}/", flush=True)
        return self.prometheus

    def judged(self, prometheus: Prometheus | None, case: Case, hypothesis: dict, run_phases: dict,
               reason: str) -> dict:
        """The case's hypothesis judged by Prometheus, while its targets are still scraped."""
        return slo.judged_or_unknown(prometheus.client() if prometheus else None, reason or self.prometheus_error,
                                     hypothesis, run_phases, {"case": case.name}, observe.signals_of(case))

    def sidecars(self, namespace: str) -> dict[str, bool]:
        """Each webgatos Pod: whether istiod's webhook injected `istio-proxy`; its containers printed."""
        kube = self.kube
        kube.echo(f"kubectl --context {kube.context} get pods --namespace {namespace} -l {chaos.TARGET_SELECTOR} "
                  "-o custom-columns=POD:.metadata.name,CONTAINERS:.spec.containers[*].name,"
                  "INIT:.spec.initContainers[*].name")
        pods = kube.get("pods", "--namespace", namespace, "-l", chaos.TARGET_SELECTOR)["items"]
        for pod in pods:
            print(f"      {pod['metadata']['name']}: {', '.join(istio.sidecar_names(pod))}", flush=True)
        return {pod["metadata"]["name"]: istio.has_istio_proxy(pod) for pod in pods}

    def chaos_kubeconfig(self, namespace: str, workdir: Path) -> Path:
        """The chaos tool's RBAC in the case's namespace, and a kubeconfig with only its token."""
        rbac = workdir / "chaos-rbac.yaml"
        rbac.write_text(yaml.safe_dump_all(chaos.rbac_documents(namespace), sort_keys=False))
        self.kube.kubectl("apply", "--namespace", namespace, "-f", shown(rbac))
        token = self.kube.kubectl("create", "token", chaos.SERVICE_ACCOUNT, "--namespace", namespace,
                                  "--duration", f"{chaos.TOKEN_SECONDS}s").stdout.strip()
        path = self.private / f"{namespace}-chaos-kubeconfig"  # a credential: not in the report folder
        path.write_text(yaml.safe_dump(chaos.token_kubeconfig(self.kube.config(), token, namespace)))
        path.chmod(0o600)
        return path

    def remove(self, namespace: str, release: str) -> None:
        """The release, then its namespace (the Job, the ConfigMap, the chaos RBAC). Not waited for: the
        next case has its own namespace, and the Pods' graceful shutdowns need no CPU."""
        self.kube.helm("uninstall", release, "--namespace", namespace, timeout=120, check=False)
        self.kube.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _kills_so_far(killer) -> int | None:
    """Kills the chaos tool has logged so far (`TIME killed target=...` lines); None without chaos."""
    if killer is None:
        return None
    try:
        lines = killer.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return 0
    return sum(line.split()[1:2] == ["killed"] for line in lines)
