"""Prometheus' targets change while it runs (file_sd re-read, no restart): redis_exporter, built
from its Go module, scraped once added and dropped once removed."""

import json
import urllib.request

import pytest

from lab.host.binaries import MissingBinary
from lab.host.procs import wait_until
from lab.observe.exporters import redis_exporter_binary, start_redis_exporter
from lab.observe.prometheus import Prometheus, prometheus_binary
from lab.observe.promql import PromQLError
from tests.conftest import IN_CI


def require(finder) -> None:
    try:
        finder()
    except MissingBinary as missing:  # it names the make target
        if IN_CI:
            raise
        pytest.skip(str(missing))


def active_jobs(server: Prometheus) -> set[str]:
    with urllib.request.urlopen(f"{server.url}/api/v1/targets?state=active", timeout=5) as response:
        targets = json.loads(response.read())["data"]["activeTargets"]
    return {target["labels"]["job"] for target in targets}


def has_data(server: Prometheus, query: str) -> bool:
    try:
        server.client().value(query)
    except PromQLError as error:
        assert error.reason == "no data", error
        return False
    return True


def test_redis_exporter_is_scraped_once_added_and_dropped_once_removed(procs, redis_url, tmp_path):
    require(prometheus_binary)
    require(redis_exporter_binary)
    _, address = start_redis_exporter(procs, redis_url)
    with Prometheus(tmp_path / "prometheus", group=procs) as server:
        server.set_targets("redis", [address], labels={"case": "targets-test"})
        server.wait_scraped("redis", timeout=30)
        assert server.client().value('redis_up{job="redis",case="targets-test"}') == 1
        server.set_targets("redis", [])
        wait_until(lambda: "redis" not in active_jobs(server), 30, "the redis target to be dropped", interval=0.25)
        # A dropped target's series are marked stale within a scrape interval: no answer, not the last value.
        wait_until(lambda: not has_data(server, 'up{job="redis"}'), 10, "the dropped target's series to go stale",
                   interval=0.25)
