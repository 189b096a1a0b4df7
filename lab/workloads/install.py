"""The one install path of the lab: a chart of charts/ into a fresh namespace of the lab's
cluster, with the lab's values for it (lab/values/NAME.yaml: its Pods tolerate the lab node's
taint), more values files, and the Istio Gateway on a port of the gateway's Service; removed,
namespace and Pods, when its `with` block ends."""

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from lab.host.paths import CHARTS, LAB_VALUES
from lab.host.procs import LOOPBACK, free_port, wait_until
from lab.kube.cluster import LabCluster
from lab.workloads.helm import deep_merge, run_helm


@dataclass(frozen=True)
class Release:
    """An installed chart: its release (named after the chart), namespace and gateway port; the
    URL of its Gateway server on the ingress gateway, and the Envoy cluster istiod names after its
    Service."""
    name: str
    namespace: str
    port: int
    url: str
    upstream_cluster: str

    @classmethod
    def of(cls, chart: str, namespace: str, port: int) -> "Release":
        return cls(chart, namespace, port, f"http://{LOOPBACK}:{port}",
                   f"outbound|80||{chart}.{namespace}.svc.cluster.local")


@contextmanager
def installed(cluster: LabCluster, chart: str, workdir: str | Path, values_files: Sequence[Path] = (),
              values: dict | None = None, port: int = 0) -> Iterator[Release]:
    """`helm install CHART charts/CHART -f lab/values/CHART.yaml -f VALUES_FILES... -f values`, the
    Gateway on `port` (0: a free one), in a namespace of its own."""
    namespace = f"lab-{uuid.uuid4().hex[:6]}"
    port = port or free_port()
    values_file = Path(workdir) / f"{chart}-values.yaml"
    values_file.write_text(yaml.safe_dump(deep_merge({"istio": {"gateway": {"port": port}}}, values or {})))
    cluster.plane.create_namespace(namespace)
    try:
        cluster.mesh.publish_port(port)
        files = [LAB_VALUES / f"{chart}.yaml", *values_files, values_file]
        run_helm("install", chart, str(CHARTS / chart), "--namespace", namespace,
                 *(arg for path in files for arg in ("-f", str(path))),
                 env=cluster.plane.env(), home=cluster.workdir / "helm")
        yield Release.of(chart, namespace, port)
    finally:
        remove_namespace(cluster, namespace, release=chart)
        cluster.mesh.unpublish_port(port)


def remove_namespace(cluster: LabCluster, namespace: str, release: str | None = None) -> None:
    """Delete the namespace, its Pods at once (a teardown, not a demo of graceful shutdown). With
    `release`, uninstall it first: it may own objects elsewhere (the gateway's AuthorizationPolicy
    lives in the gateway's namespace), which the namespace's deletion would leave behind."""
    cluster.plane.kubectl("delete", "pods", "--all", "--namespace", namespace, "--grace-period=0", "--force",
                          "--wait=false", check=False)
    if release:
        run_helm("uninstall", release, "--namespace", namespace, env=cluster.plane.env(),
                 home=cluster.workdir / "helm", check=False)
    cluster.plane.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    wait_until(lambda: not cluster.node.runs(namespace), 30, f"the Pods of {namespace} to stop", interval=0.1)
