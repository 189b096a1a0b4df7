"""The talk's headless-browser test, in a real browser: a user's color across replicas, as a person sees it.

Two real webgatos replicas (gunicorn) sit behind a real Envoy; a real headless Chromium loads `/`
ten times in one browser context and reads the background color it actually rendered.

- Layer 7 (Envoy's HTTP router, as a mesh): every request is balanced on its own, so the memory
  store loses the user's color, while Redis and Hazelcast keep it on both replicas.
- Layer 4 (Envoy's TCP proxy, as a plain Kubernetes Service): a connection is balanced once and
  then stays on its replica, so a browser that keeps its connection alive sees one replica and the
  memory store looks fine. See docs/browser.md.

Every walk also checks the page itself: text contrast (WCAG AA) at the colors seen, the cat
picture decoded from the app, and no request to anything but the app's own origin. Screenshots of
the first and last load land in test-artifacts/browser/ when a test fails.
"""

import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from lab.host import balancer
from lab.host.paths import REPO_ROOT
from lab.host.procs import LOOPBACK, wait_until
from tests.conftest import require_browser

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
LOADS = 10
REPLICAS = ["webgatos-0", "webgatos-1"]

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


@pytest.fixture(scope="module", autouse=True)
def browser_available():
    require_browser()


@pytest.fixture(autouse=True)
def no_browser_left_behind():
    """Each walk must take its browser (and Playwright's driver) down with it."""
    yield
    leftovers = [child for child in psutil.Process().children(recursive=True) if _is_browser(child)]
    assert not leftovers, f"browser processes still running after the test: {leftovers}"


def _is_browser(process: psutil.Process) -> bool:
    try:
        command = " ".join(process.cmdline()).lower()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False
    return "chrom" in command or "playwright" in command


@pytest.fixture
def front(procs, tmp_path):
    """Start a balancer in front of `upstreams` ("l7": HTTP per request, "l4": TCP per connection,
    lab/host/balancer.py); return its URL once every upstream passed its /readyz health check, so the
    walk sees the whole rotation."""

    def start(upstream_urls: list[str], layer: str) -> str:
        upstreams = [(LOOPBACK, int(url.rsplit(":", 1)[1])) for url in upstream_urls]
        # One worker thread: Envoy's round-robin state is per worker, so with one worker every
        # connection of the browser draws from the same sequence and the test can reason about it.
        url, _ = balancer.start(procs, tmp_path, upstreams, layer="http" if layer == "l7" else "tcp",
                                name=f"envoy-{layer}", extra_args=["--concurrency", "1"])
        return f"{url}/"

    return start


def walk(url: str, tmp_path: Path, **options):
    from lab.experiments.browser import walk_colors
    result = walk_colors(url, loads=options.pop("loads", LOADS), screenshot_dir=tmp_path / "screenshots", **options)
    print(result.summary())  # shown by pytest with a failure, or with -s
    print("requests:", [(r.resource_type, r.url.rsplit("/", 1)[1] or "/", r.replica) for r in result.requests])
    return result


@contextmanager
def screenshots_kept_on_failure(result, request):
    """On a failed assertion, copy the first and last screenshots to test-artifacts/browser/TEST/."""
    try:
        yield
    except AssertionError:
        target = ARTIFACTS / request.node.name.replace("[", "-").replace("]", "")
        target.mkdir(parents=True, exist_ok=True)
        for shot in result.screenshots:
            shutil.copy(shot, target)
        (target / "walk.txt").write_text(result.summary() + "\n")
        raise


def assert_page_is_sound(result) -> None:
    """What a person needs from every load: the page rendered its own color, readable text, the
    cat picture from the app, and nothing fetched from anywhere but the app's origin."""
    for load in result.loads:
        assert load.status == 200, f"load {load.index}: HTTP {load.status}"
        assert load.color == load.declared_color, (
            f"load {load.index}: the page says {load.declared_color} but the browser rendered {load.color}")
        assert load.replica == load.header_replica, (
            f"load {load.index}: page names {load.replica}, X-Replica says {load.header_replica}")
        assert load.texts, f"load {load.index}: no visible text found"
        unreadable = [t for t in load.texts if t.ratio < t.required]
        assert not unreadable, f"load {load.index}: text below WCAG AA contrast on {load.color}: {unreadable}"
        assert load.cat_natural_width > 0, f"load {load.index}: the cat picture did not load ({load.cat_src})"
        assert load.cat_src == result.origin + "/static/cat.svg", f"load {load.index}: cat from {load.cat_src}"
    assert not result.foreign_requests(), f"requests outside {result.origin}: {result.foreign_requests()}"
    # net::ERR_ABORTED is the browser cancelling a request (a navigation), not the app failing.
    failed = [r for r in result.requests if (r.failure and r.failure != "net::ERR_ABORTED") or (r.status or 0) >= 400]
    assert not failed, f"failed browser requests: {failed}"


def test_memory_store_loses_the_color_behind_layer7(start_webgatos, front, tmp_path, request):
    url = front(start_webgatos("memory"), "l7")

    result = walk(url, tmp_path, label="memory-l7")

    with screenshots_kept_on_failure(result, request):
        assert_page_is_sound(result)
        # Per-request balancing: one keep-alive connection of the browser, both replicas behind it.
        assert any(replicas >= set(REPLICAS) for replicas in result.replicas_by_connection().values()), (
            f"no browser connection reached both replicas\n{result.summary()}")
        # Round-robin over page + picture (+ the icon once) still brings the pages to both replicas.
        assert set(result.replicas) == set(REPLICAS), f"every page came from one replica\n{result.summary()}"
        # A replica that does not hold the session starts a new one: each switch loses the color.
        for before, after in zip(result.loads, result.loads[1:], strict=False):
            if before.replica != after.replica:
                assert after.color != before.color, f"loads {before.index}->{after.index}\n{result.summary()}"
        assert result.color_changes >= 1, result.summary()


@pytest.mark.parametrize("store", ["redis", pytest.param("hazelcast", marks=pytest.mark.hazelcast)])
def test_shared_store_keeps_the_color_on_every_replica(store, start_webgatos, front, tmp_path, request):
    url = front(start_webgatos(store), "l7")

    result = walk(url, tmp_path, label=f"{store}-l7")

    with screenshots_kept_on_failure(result, request):
        assert_page_is_sound(result)
        assert set(result.replicas) == set(REPLICAS), f"both replicas must serve the page\n{result.summary()}"
        assert len(set(result.colors)) == 1, f"the color changed\n{result.summary()}"


def test_keep_alive_hides_the_memory_store_behind_layer4(start_webgatos, front, tmp_path, request):
    """Keep-alive guarantees exactly this: every request sent on one TCP connection reaches the
    replica the layer-4 front picked when that connection opened. The browser sends its next pages
    on the connection it keeps open, so they all come from one replica and the memory store looks
    fine; fresh connections to the same front still reach both replicas."""
    # Gunicorn closes an idle keep-alive connection after 5 s; on a loaded machine a pause between
    # loads could do that and force a new connection. A longer idle limit keeps the premise (one
    # long-lived browser connection) stable; the per-connection claims below hold either way.
    url = front(start_webgatos("memory", GUNICORN_CMD_ARGS="--keep-alive 120"), "l4")

    result = walk(url, tmp_path, label="memory-l4")

    with screenshots_kept_on_failure(result, request):
        assert_page_is_sound(result)
        # The guarantee: whatever a connection carried (pages, picture, icon), one replica answered.
        by_connection = result.replicas_by_connection()
        assert by_connection, result.summary()
        for connection, replicas in by_connection.items():
            assert len(replicas) == 1, f"connection {connection} reached {replicas}\n{result.summary()}"
        # Pages that follow each other on one connection share a replica, so the session holds.
        for run in result.connection_runs():
            assert len({load.color for load in run}) == 1, f"color changed on one connection\n{result.summary()}"
        # The effect: the browser kept its connection open, so every page came on that one reused
        # connection, from one replica, and the memory store never lost the color. The browser
        # opens no spare connections ahead of a page, but drops the ones it keeps when the
        # machine's network changes (a cluster's Pod starting beside this test is enough); its net
        # log says when, and only then may a page come on a new connection.
        for previous, load in zip(result.loads, result.loads[1:], strict=False):
            if not load.after_network_change:
                assert load.connection_id == previous.connection_id and load.connection_reused, (
                    f"load {load.index} came on a new connection though the network did not change\n"
                    f"{result.summary()}")
        for run in result.connection_runs():
            assert len({load.replica for load in run}) == 1, result.summary()

    # Not a quiet front: new connections are dealt round-robin to both replicas.
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    reached: set[str] = set()

    def both_reached() -> bool:
        reached.add(_replica_on_new_connection(port))
        return reached >= set(REPLICAS)

    wait_until(both_reached, 20, "new connections to reach both replicas through the layer-4 front", interval=0)


def _replica_on_new_connection(port: int) -> str:
    """GET /healthz on a connection of its own (closed after) and return its X-Replica."""
    with socket.create_connection((LOOPBACK, port), timeout=5) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: webgatos\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := connection.recv(4096):
            answer += chunk
    for line in answer.decode("latin-1").split("\r\n"):
        if line.lower().startswith("x-replica:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no X-Replica in {answer[:200]!r}")


def test_page_is_readable_at_every_color(start_webgatos, tmp_path, request):
    """Each new session takes the next color of the replica's palette; as many new visitors as
    there are colors see them all, and each must be readable in the browser."""
    from webgatos.colors import PALETTE

    [replica] = start_webgatos("memory", replicas=1)

    result = walk(replica + "/", tmp_path, loads=len(PALETTE), new_session_each_load=True, label="palette")

    with screenshots_kept_on_failure(result, request):
        assert_page_is_sound(result)
        assert set(result.colors) == set(PALETTE), result.summary()
