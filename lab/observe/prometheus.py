"""A real Prometheus server for the lab: Debian's `prometheus` binary (`make prometheus`), on a
free loopback port, with its own data directory, scraping what `set_targets` names.

    with Prometheus(workdir) as prometheus:                       # ready when the block starts
        prometheus.set_targets("webgatos", ["127.0.0.1:8080"], labels={"namespace": "demo"})
        prometheus.set_targets("gateway", ["127.0.1.2:15000"], metrics_path="/stats/prometheus")
        PromQL(prometheus.url).value("sum(up)")

Targets live in file_sd files (one per job, written atomically), which Prometheus re-reads while it
runs: replicas come and go under chaos without a restart. Prometheus applies a change within its
discovery manager's 5 s throttle. `watching` (lab_targets.py) keeps a lab case's targets current.
(Debian's build has no kubernetes_sd_configs: the lab names its targets itself, from its node.)

On a cluster, Pods are scraped through the API server's proxy (`kube_api`: the API server's
credentials as file paths, see render_config); their target groups go to `set_groups(...,
kube_api=True)`, a folder of its own read by a second scrape config with those credentials.
"""

import json
import os
import shutil
from pathlib import Path

import yaml

from lab.host import binaries
from lab.host.procs import LOOPBACK, ProcessGroup, free_port, wait_until
from lab.observe.promql import PromQL

SCRAPE_INTERVAL = "1s"  # lab runs last a minute or two: every second counts
RETENTION = "1d"
KUBE_API_DIR = "kube_api"  # under the targets folder: the groups scraped through an API server


def prometheus_binary() -> str:
    return binaries.find("prometheus", shutil.which("prometheus"), "/usr/bin/prometheus",
                         missing="run `make prometheus` (installs Debian's prometheus package)")


def render_config(targets_dir: Path, scrape_interval: str = SCRAPE_INTERVAL, kube_api: dict | None = None) -> dict:
    """One scrape config over every file_sd file of `targets_dir`: each file sets its targets'
    `job` and `__metrics_path__` labels, so adding a job needs no reload.

    With `kube_api` ({"ca_file", "cert_file", "key_file", "token_file", "server_name",
    "insecure_skip_verify"}, each optional), a second one reads `targets_dir`/kube_api/*.json over
    https with those credentials: targets are the API server's host:port, paths its Pod proxy."""
    file_sd = [{"files": [str(targets_dir / "*.json")], "refresh_interval": scrape_interval}]
    scrape_configs = [{"job_name": "lab", "honor_labels": False, "file_sd_configs": file_sd}]
    if kube_api is not None:
        scrape_configs.append(kube_api_scrape_config(targets_dir / KUBE_API_DIR, scrape_interval, kube_api))
    return {"global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                       "evaluation_interval": scrape_interval},
            "scrape_configs": scrape_configs}


def kube_api_scrape_config(folder: Path, scrape_interval: str, credentials: dict) -> dict:
    unknown = sorted(set(credentials) - {"ca_file", "cert_file", "key_file", "token_file", "server_name",
                                         "insecure_skip_verify"})
    if unknown:
        raise ValueError(f"unknown kube_api credential(s) {', '.join(unknown)}")
    if bool(credentials.get("cert_file")) != bool(credentials.get("key_file")):
        raise ValueError("kube_api: a client certificate needs its key (cert_file and key_file)")
    tls = {key: credentials[key] for key in ("ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify")
           if credentials.get(key)}
    config = {"job_name": "kube_api", "honor_labels": False, "scheme": "https", "tls_config": tls,
              "file_sd_configs": [{"files": [str(folder / "*.json")], "refresh_interval": scrape_interval}]}
    if credentials.get("token_file"):
        config["authorization"] = {"type": "Bearer", "credentials_file": credentials["token_file"]}
    return config


def target_group(job: str, targets: list[str], metrics_path: str = "/metrics",
                 labels: dict[str, str] | None = None) -> dict:
    """One file_sd target group: `targets` are host:port."""
    for target in targets:
        host, sep, port = target.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"bad scrape target {target!r} for job {job!r}: use host:port")
    return {"targets": list(targets), "labels": {**(labels or {}), "job": job, "__metrics_path__": metrics_path}}


class Prometheus:
    """The server process; `url` is where its API and UI answer once `start` returns."""

    def __init__(self, workdir: str | Path, scrape_interval: str = SCRAPE_INTERVAL,
                 group: ProcessGroup | None = None, kube_api: dict | None = None):
        self.workdir = Path(workdir).resolve()
        self.targets_dir = self.workdir / "targets"
        self.kube_api = kube_api
        self.scrape_interval = scrape_interval
        self.group = group or ProcessGroup(self.workdir / "logs")
        self.owns_group = group is None
        self.port = 0
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def client(self) -> PromQL:
        return PromQL(self.url)

    def start(self, timeout: float = 60.0) -> "Prometheus":
        binary = prometheus_binary()
        (self.targets_dir / KUBE_API_DIR).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        rendered = render_config(self.targets_dir, self.scrape_interval, self.kube_api)
        config.write_text(yaml.safe_dump(rendered, sort_keys=False))
        self.port = free_port()
        self.proc = self.group.start("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--storage.tsdb.retention.time={RETENTION}", f"--web.listen-address={LOOPBACK}:{self.port}",
            "--log.level=warn"])
        client = self.client()
        wait_until(client.ready, timeout, f"Prometheus to be ready at {self.url}", interval=0.2, proc=self.proc)
        return self

    def set_targets(self, job: str, targets: list[str], metrics_path: str = "/metrics",
                    labels: dict[str, str] | None = None) -> None:
        """Scrape `targets` (host:port) as `job` from now on; an empty list stops scraping it."""
        self.set_groups(job, [target_group(job, targets, metrics_path, labels)] if targets else [])

    def set_groups(self, job: str, groups: list[dict], kube_api: bool = False) -> None:
        """The file_sd target groups of `job` (target_group's), replacing the previous ones;
        `kube_api`: scraped through the API server (render_config)."""
        if not job or not job.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"bad job name {job!r}: letters, digits, - and _")
        folder = self.targets_dir / KUBE_API_DIR if kube_api else self.targets_dir
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{job}.json"
        partial = path.with_suffix(".json.tmp")  # not matched by *.json: Prometheus never reads half a file
        partial.write_text(json.dumps(groups))
        os.replace(partial, path)

    def wait_scraped(self, job: str, count: int = 1, timeout: float = 30.0) -> None:
        """Wait until `count` targets of `job` have been scraped successfully."""
        client = self.client()

        def scraped() -> bool:
            try:
                return client.value(f'count(up{{job="{job}"}} == 1)') >= count
            except Exception:  # noqa: BLE001 - no data yet is the usual answer while waiting
                return False
        wait_until(scraped, timeout, f"Prometheus to scrape {count} target(s) of job {job!r}", interval=0.25,
                   proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(grace=5)
        if self.owns_group:
            self.group.stop_all(grace=5)

    def __enter__(self) -> "Prometheus":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc_info) -> None:
        self.stop()
