"""Fixtures shared by every test layer: real processes on loopback, always torn down.

Layering: `procs` (a ProcessGroup per test) < session-wide stores (`redis_url`,
`hazelcast_members`) < `start_webgatos` (gunicorn replicas of the real app). The lab's Kubernetes
and Istio (`lab_cluster`, `topology`) live in tests/e2e/conftest.py, the bare API server in
tests/cluster/conftest.py.

Hypothesis profiles (HYPOTHESIS_PROFILE): `default`, bounded for `make test`; `fuzz`, many more
examples, for `make test-fuzz`.

Marker `processes`: the test starts a process (a server, a CLI, helm). Every test under
PROCESS_TIERS or using one of PROCESS_FIXTURES has it; elsewhere a module or test says so
itself. `--no-processes` (make test-fast) runs the rest, and there any attempt to start a process
fails the test, so a missing marker cannot hide.
"""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.database import DirectoryBasedExampleDatabase

from lab.host import binaries
from lab.host.paths import REPO_ROOT
from lab.host.procs import LOOPBACK, ProcessGroup, free_port

WEBGATOS_GUNICORN_CONF = REPO_ROOT / "services" / "webgatos" / "gunicorn.conf.py"
SQRT_GUNICORN_CONF = REPO_ROOT / "services" / "sqrt" / "gunicorn.conf.py"
# The admin API's credential of every replica start_webgatos starts, and the header that carries it.
ADMIN_TOKEN = "test-admin-token-0123456789"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

# Hypothesis keeps its example database and caches in .cache/ (git-ignored), not in ./.hypothesis.
HYPOTHESIS_HOME = REPO_ROOT / ".cache" / "hypothesis"
set_hypothesis_home_dir(HYPOTHESIS_HOME)
EXAMPLE_DATABASE = DirectoryBasedExampleDatabase(HYPOTHESIS_HOME / "examples")
# CI replays the same examples (derandomized, so no database); a laptop explores new ones and
# keeps the failing ones in the database.
IN_CI = bool(os.environ.get("CI"))
settings.register_profile(
    "default", max_examples=100, deadline=None, print_blob=True,
    derandomize=IN_CI, database=None if IN_CI else EXAMPLE_DATABASE,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fuzz", settings.get_profile("default"), max_examples=2000,
                          derandomize=False, database=EXAMPLE_DATABASE)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def fuzz_examples(share: float) -> int:
    """max_examples for one fuzz test, scaled from the profile's: above 1 where examples are cheap
    (in-process), 1 or below where each one costs real processes and sockets."""
    return max(5, round(settings.default.max_examples * share))


# Folders whose every test runs real servers: the API server, gunicorn, Redis, Envoy, a node.
PROCESS_TIERS = ("cluster", "integration", "e2e")
# Fixtures (below) that start real servers: a test using one starts processes wherever it lives.
PROCESS_FIXTURES = {"procs", "session_procs", "redis_url", "hazelcast_members", "start_webgatos"}


def pytest_addoption(parser):
    parser.addoption("--no-processes", action="store_true",
                     help="run only the tests not marked `processes`; starting a process fails the test")


def pytest_collection_modifyitems(config, items):
    tests_dir = Path(__file__).parent
    for item in items:
        tier = item.path.relative_to(tests_dir).parts[0] if item.path.is_relative_to(tests_dir) else None
        if (tier in PROCESS_TIERS
                or PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.processes)
    if config.getoption("--no-processes"):
        selected = [item for item in items if "processes" not in item.keywords]
        config.hook.pytest_deselected(items=[item for item in items if "processes" in item.keywords])
        items[:] = selected


class ProcessStarted(AssertionError):
    pass


@pytest.fixture(autouse=True)
def _no_process_unless_marked(request, monkeypatch):
    """Under --no-processes, a test that starts a process fails, naming the marker it lacks."""
    if not request.config.getoption("--no-processes"):
        return

    def refuse(*args, **kwargs):
        raise ProcessStarted(f"{request.node.nodeid} starts a process: mark it `pytest.mark.processes`")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    monkeypatch.setattr(os, "fork", refuse)
    monkeypatch.setattr(os, "posix_spawn", refuse)


@pytest.fixture
def procs(tmp_path):
    """A ProcessGroup whose processes are all stopped when the test ends, pass or fail."""
    with ProcessGroup(tmp_path / "logs") as group:
        yield group


@pytest.fixture(scope="session")
def session_procs(tmp_path_factory):
    with ProcessGroup(tmp_path_factory.mktemp("session-logs")) as group:
        yield group


@pytest.fixture(scope="session")
def redis_url(session_procs):
    """One real redis-server for the session; tests use their own database or keys."""
    port = free_port()
    session_procs.redis(port)
    return f"redis://{LOOPBACK}:{port}/0"


def require_hazelcast():
    try:
        binaries.java()
        binaries.hazelcast_jar()
    except binaries.MissingBinary as missing:
        if IN_CI:
            raise
        pytest.skip(str(missing))


def require_control_plane():
    """The control plane `make control-plane` builds, or a skip naming it (a failure in CI)."""
    try:
        for program in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kubectl",
                        "pilot-discovery", "istioctl"):
            binaries.control_plane(program)
    except binaries.MissingBinary as missing:
        if IN_CI:
            raise
        pytest.skip(str(missing))


def require_browser():
    """Chromium and Playwright, or a skip naming what to run (a failure in CI)."""
    try:
        binaries.chromium()
        import playwright.sync_api  # noqa: F401
    except (binaries.MissingBinary, ImportError) as missing:
        if IN_CI:
            raise
        pytest.skip(f"{missing} (run `make browser`)")


@pytest.fixture(scope="session")
def hazelcast_members(session_procs):
    """A real two-member Hazelcast cluster for the session: (members string, cluster name)."""
    require_hazelcast()
    ports = [free_port(), free_port()]
    cluster_name = f"test-{uuid.uuid4().hex[:8]}"
    session_procs.hazelcast_cluster(ports, cluster_name)
    return ",".join(f"{LOOPBACK}:{p}" for p in ports), cluster_name


@pytest.fixture
def start_webgatos(procs, redis_url, request):
    """Start N real gunicorn replicas of webgatos; returns their base URLs.

    `store` is memory, redis or hazelcast; extra keyword arguments become environment variables.
    """

    def start(store: str = "memory", replicas: int = 2, **env) -> list[str]:
        # No drain pause at teardown (the graceful-shutdown test sets SHUTDOWN_DRAIN_SECONDS itself).
        base_env = {"SESSION_STORE": store, "SECRET_KEY": "test-secret-key", "SHUTDOWN_DRAIN_SECONDS": "0",
                    "ADMIN_TOKEN": ADMIN_TOKEN}
        if store == "redis":
            base_env["REDIS_URL"] = redis_url
        elif store == "hazelcast":
            members, cluster_name = request.getfixturevalue("hazelcast_members")
            base_env.update(HAZELCAST_MEMBERS=members, HAZELCAST_CLUSTER_NAME=cluster_name)
        urls = []
        for index in range(replicas):
            port = free_port()
            name = f"webgatos-{index}"
            procs.gunicorn("webgatos:create_app()", port, {**base_env, "REPLICA_NAME": name, **env},
                           name=name, config=WEBGATOS_GUNICORN_CONF)
            urls.append(f"http://{LOOPBACK}:{port}")
        return urls

    return start
