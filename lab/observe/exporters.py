"""Exporters the lab's Prometheus scrapes beside the apps: oliver006/redis_exporter for the
topology's Redis, built from its Go module by `make redis-exporter` into
.cache/observe/redis_exporter-<version>/."""

import shutil
import urllib.request

from lab.host import binaries
from lab.host.paths import CACHE
from lab.host.procs import LOOPBACK, Proc, ProcessGroup, free_port, wait_until

REDIS_EXPORTER_VERSION = "v1.97.0"  # the Makefile's REDIS_EXPORTER_VERSION
REDIS_EXPORTER_DIR = CACHE / "observe" / f"redis_exporter-{REDIS_EXPORTER_VERSION}"


def redis_exporter_binary() -> str:
    return binaries.find("redis_exporter", REDIS_EXPORTER_DIR / "redis_exporter", shutil.which("redis_exporter"),
                         missing="run `make redis-exporter` (builds github.com/oliver006/redis_exporter "
                                 f"{REDIS_EXPORTER_VERSION} from its Go module into .cache/observe/)")


def start_redis_exporter(group: ProcessGroup, redis_url: str, name: str = "redis-exporter",
                         timeout: float = 20.0) -> tuple[Proc, str]:
    """redis_exporter for the Redis at `redis_url` on a free loopback port; (process, host:port)
    once its /metrics answers with redis_up."""
    address = f"{LOOPBACK}:{free_port()}"
    proc = group.start(name, [redis_exporter_binary(), f"-redis.addr={redis_url}",
                              f"-web.listen-address={address}", "-log-format=txt"])

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://{address}/metrics", timeout=1.0) as response:
                return b"redis_up" in response.read()
        except OSError:
            return False
    wait_until(answers, timeout, f"redis_exporter at {address}", interval=0.2, proc=proc)
    return proc, address
