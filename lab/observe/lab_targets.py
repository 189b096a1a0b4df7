"""What the lab's Prometheus scrapes during one case, kept current while replicas come and go:

    with Prometheus(workdir / "prometheus") as prometheus:          # once per lab run
        with watching(prometheus, cluster, release, case="redis-2", job="webgatos",
                      redis_url=topology.store_address):
            ...                                                       # load, chaos
        slo.judge(prometheus.client(), hypothesis, phases, {"case": "redis-2"},
                  slo.gateway_signals(release.port))

Jobs: JOB (each replica's /metrics, one target group per Pod, labelled namespace and pod, rewritten
when the node's Pods change), `gateway` (the ingress gateway's Envoy admin /stats/prometheus),
`replicas` (replicas.py, this release's namespace), `redis` (redis_exporter, when a Redis URL is
given). Every target carries `case`, so one Prometheus serves a run of many cases.
"""

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from lab.host.procs import ProcessGroup
from lab.kube.mesh.gateway import PROXY_ADMIN_PORT
from lab.observe.exporters import start_redis_exporter
from lab.observe.follower import TargetFollower
from lab.observe.prometheus import Prometheus, target_group
from lab.observe.replicas import ReplicaExporter, api_fetcher

FOLLOW_INTERVAL = 0.5
# Prometheus applies new file_sd targets within its discovery manager's 5 s throttle, then scrapes.
SCRAPED_TIMEOUT = 30.0


def pod_groups(node, namespace: str, job: str, labels: dict[str, str]) -> list[dict]:
    """A target group per Pod the lab's node runs in `namespace` (ready or not: a dead replica
    shows as up == 0)."""
    return [target_group(job, [f"{run.address}:{run.port}"], labels={**labels, "namespace": namespace,
                                                                     "pod": run.name})
            for run in sorted(node.runs(namespace), key=lambda run: run.name)]


class PodFollower(TargetFollower):
    """JOB's targets: the lab node's Pods of a namespace."""

    def __init__(self, prometheus: Prometheus, node, namespace: str, job: str, labels: dict[str, str]):
        super().__init__(prometheus, job, FOLLOW_INTERVAL)
        self.node, self.namespace, self.labels = node, namespace, labels

    def groups(self) -> list[dict]:
        return pod_groups(self.node, self.namespace, self.job, self.labels)


@contextmanager
def watching(prometheus: Prometheus, cluster, release, case: str, job: str = "webgatos",
             redis_url: str = "", timeout: float = SCRAPED_TIMEOUT) -> Iterator[Prometheus]:
    """Scrape `release` (lab/workloads/install.py) on `cluster` (a LabCluster) as case `case`;
    the block starts once every job has been scraped (a phase starting then has data from its
    first second), and the targets are removed when it ends: judge the run inside the block."""
    labels = {"case": case}
    with ExitStack() as stack:
        stack.enter_context(PodFollower(prometheus, cluster.node, release.namespace, job, labels))
        gateway = cluster.mesh.gateway_run()
        prometheus.set_targets("gateway", [f"{gateway.address}:{PROXY_ADMIN_PORT}"], "/stats/prometheus",
                               {**labels, "namespace": gateway.namespace, "pod": gateway.name})
        stack.callback(prometheus.set_targets, "gateway", [])
        exporter = stack.enter_context(ReplicaExporter(api_fetcher(cluster.plane), (release.namespace,)))
        prometheus.set_targets("replicas", [exporter.address], labels=labels)
        stack.callback(prometheus.set_targets, "replicas", [])
        if redis_url:
            group = stack.enter_context(ProcessGroup(prometheus.workdir / "logs" / f"exporters-{case}"))
            _, address = start_redis_exporter(group, redis_url)
            prometheus.set_targets("redis", [address], labels=labels)
            stack.callback(prometheus.set_targets, "redis", [])
        ready = sum(1 for run in cluster.node.runs(release.namespace) if run.ready)
        for name, count in ((job, ready), ("gateway", 1), ("replicas", 1), ("redis", int(bool(redis_url)))):
            if count:
                prometheus.wait_scraped(name, count, timeout)
        yield prometheus
