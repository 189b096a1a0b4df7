"""A job's scrape targets kept current while Pods come and go (chaos kills them; their Deployment
makes new ones, with new names): a thread re-reads the Pods every `interval` seconds and rewrites
the job's file_sd targets when they changed. Subclasses say where the Pods are read from."""

import threading

from lab.observe.prometheus import Prometheus


class TargetFollower:
    """Rewrites JOB's targets on `prometheus` whenever `groups()` changes; a context manager that
    drops them at its end."""

    def __init__(self, prometheus: Prometheus, job: str, interval: float, kube_api: bool = False):
        self.prometheus, self.job, self.interval, self.kube_api = prometheus, job, interval, kube_api
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._follow, name=f"targets-{job}", daemon=True)
        self.written: list[dict] | None = None

    def groups(self) -> list[dict]:
        """The job's target groups now (prometheus.target_group's)."""
        raise NotImplementedError

    def refresh(self) -> None:
        groups = self.groups()
        if groups != self.written:
            self.prometheus.set_groups(self.job, groups, kube_api=self.kube_api)
            self.written = groups

    def _follow(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                self.refresh()
            except (OSError, ValueError):
                continue  # the API server busy for a moment: keep the last targets, try again

    def __enter__(self) -> "TargetFollower":
        self.refresh()
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopping.set()
        if self.thread.ident is not None:
            self.thread.join(timeout=5)
        self.prometheus.set_groups(self.job, [], kube_api=self.kube_api)
