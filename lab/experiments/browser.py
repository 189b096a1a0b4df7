"""Look at webgatos the way a person does: a real headless Chromium loads the page several times in
one browser context (one user, one cookie jar, one pool of keep-alive connections) and reads what
it renders.

`walk_colors(url)` returns, per load, the background color the browser computed (not the HTML
source), the replica name on the page, the browser's connection that carried the page (Chromium's
own connection id, so a test can tell keep-alive reuse from a new connection), the lowest text
contrast on the page and whether the cat picture decoded; plus every request the browser made and,
when asked, screenshots of the first and last load.

Chromium is Debian's (`make browser`), driven by Playwright for Python with `executable_path`;
Playwright's own browser download is never used. Chromium starts with a fresh profile and with
every background service off, and its resolver answers nothing but loopback names, so no request
can leave the machine even if a page asked for one.
"""

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from lab.experiments.netlog import network_changes_before
from lab.host import binaries

# Headless, no GPU, no QUIC, and none of the services that phone home (first-run, sync, component
# and background updates). The resolver rule turns any non-loopback host name into "not found".
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--no-pings", "--metrics-recording-only",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.*",
]
VIEWPORT = {"width": 1000, "height": 700}
LOAD_TIMEOUT_MS = 20_000
QUIET_PERIOD_S = 0.5
QUIET_TIMEOUT_S = 15.0
# The profile's preferences: no network prediction. Chromium otherwise opens spare connections
# ahead of a navigation and may send the next page on one of them instead of on the connection it
# kept, so which connection carries a page would depend on the machine's timing.
PROFILE_PREFERENCES = {"net": {"network_prediction_options": 2}}

# WCAG 2.x AA: 4.5:1 for body text, 3:1 for large text (24 px, or 18.66 px and bold).
AA_NORMAL = 4.5
AA_LARGE = 3.0

# Runs in the page: the body's computed background, what the page says about itself, the cat picture,
# and for every visible element that holds text its computed text color against the background
# actually behind it (the nearest ancestor whose background is not transparent).
_READ_PAGE_JS = """
() => {
  const parse = (css) => {
    const m = css.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const parts = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
  };
  const backgroundBehind = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) {
      const bg = parse(getComputedStyle(node).backgroundColor);
      if (bg && bg[3] > 0) { layers.push(bg); if (bg[3] >= 1) break; }
    }
    let color = [255, 255, 255];  // the canvas under everything
    for (const [r, g, b, a] of layers.reverse()) {
      color = [r * a + color[0] * (1 - a), g * a + color[1] * (1 - a), b * a + color[2] * (1 - a)];
    }
    return color;
  };
  const texts = [];
  for (const element of document.body.querySelectorAll('*')) {
    const ownText = Array.from(element.childNodes)
      .filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join('').trim();
    if (!ownText || !element.getClientRects().length) continue;
    const style = getComputedStyle(element);
    if (style.visibility === 'hidden' || Number(style.opacity) === 0) continue;
    texts.push({
      text: ownText.slice(0, 60), color: parse(style.color), background: backgroundBehind(element),
      font_size_px: parseFloat(style.fontSize), font_weight: Number(style.fontWeight) || 400,
    });
  }
  const cat = document.querySelector('img[src*="cat"]');
  return {
    background: parse(getComputedStyle(document.body).backgroundColor),
    declared_color: document.body.dataset.color || null,
    replica: document.body.dataset.replica || null,
    texts,
    cat: cat ? {src: cat.currentSrc || cat.src, natural_width: cat.naturalWidth, complete: cat.complete} : null,
  };
}
"""


@dataclass
class TextContrast:
    text: str
    color: str
    background: str
    ratio: float
    required: float


@dataclass
class PageLoad:
    index: int
    status: int
    color: str  # the body's computed background, "#rrggbb"
    declared_color: str | None  # data-color on <body>
    replica: str | None  # data-replica on <body>
    header_replica: str | None  # X-Replica of the page's response
    connection_id: str | None  # Chromium's id of the connection that carried the page
    connection_reused: bool | None
    cat_src: str | None
    cat_natural_width: int
    texts: list[TextContrast] = field(default_factory=list)
    # The machine's network changed between the previous page's request and this one's, so the
    # browser had dropped the connections it kept (lab/experiments/netlog.py).
    after_network_change: bool = False

    @property
    def worst_contrast(self) -> TextContrast | None:
        """The text with the least margin over its WCAG AA minimum."""
        return min(self.texts, key=lambda t: t.ratio / t.required, default=None)

    @property
    def readable(self) -> bool:
        return all(t.ratio >= t.required for t in self.texts)


@dataclass
class RequestSeen:
    url: str
    resource_type: str
    method: str
    status: int | None = None
    replica: str | None = None  # X-Replica of the response
    failure: str | None = None


@dataclass
class ResponseOnWire:
    """A response of the page as the network stack saw it (DevTools), with the connection it used."""
    url: str
    resource_type: str
    status: int | None
    replica: str | None
    connection_id: str | None  # None when nothing went over the network (a cache hit)
    connection_reused: bool | None


@dataclass
class ColorWalk:
    url: str
    loads: list[PageLoad]
    requests: list[RequestSeen]  # every request of the browser context (Playwright's view)
    screenshots: list[str]  # first and last load, when a folder was given
    responses: list[ResponseOnWire] = field(default_factory=list)

    @property
    def origin(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def colors(self) -> list[str]:
        return [load.color for load in self.loads]

    @property
    def replicas(self) -> list[str | None]:
        return [load.replica for load in self.loads]

    @property
    def color_changes(self) -> int:
        return sum(a != b for a, b in zip(self.colors, self.colors[1:], strict=False))

    @property
    def page_connections(self) -> list[str | None]:
        return [load.connection_id for load in self.loads]

    def replicas_by_connection(self) -> dict[str, set[str | None]]:
        """For each browser connection, the replicas that answered the responses it carried."""
        seen: dict[str, set[str | None]] = {}
        for response in self.responses:
            if response.connection_id is not None:
                seen.setdefault(response.connection_id, set()).add(response.replica)
        return seen

    def connection_runs(self) -> list[list[PageLoad]]:
        """Consecutive loads grouped by the connection that carried their page (a network change
        ends a run: the browser had to open a new connection)."""
        runs: list[list[PageLoad]] = []
        for load in self.loads:
            if runs and runs[-1][-1].connection_id == load.connection_id and not load.after_network_change:
                runs[-1].append(load)
            else:
                runs.append([load])
        return runs

    def foreign_requests(self) -> list[RequestSeen]:
        """Requests that went anywhere but the page's own origin (scheme, host and port)."""
        return [r for r in self.requests if _origin(r.url) != self.origin]

    def summary(self) -> str:
        lines = [f"{self.url}: {len(self.loads)} loads, {self.color_changes} color changes"]
        for load in self.loads:
            worst = load.worst_contrast
            lines.append(f"  load {load.index:2d}: {load.color} replica={load.replica} "
                         f"connection={load.connection_id} reused={load.connection_reused} "
                         f"contrast={worst.ratio if worst else None}"
                         + (" after a network change" if load.after_network_change else ""))
        lines.append("  on the wire: " + ", ".join(
            f"{r.resource_type}@{r.connection_id}->{r.replica}" for r in self.responses))
        return "\n".join(lines)


def walk_colors(url: str, loads: int = 10, screenshot_dir: str | Path | None = None,
                label: str = "walk", new_session_each_load: bool = False) -> ColorWalk:
    """Load `url` `loads` times in one fresh browser context and report what the browser rendered.

    `new_session_each_load` clears the cookies before each load, so every load is a new visitor
    (the connections stay open). With `screenshot_dir`, the first and last loads are saved there as
    `LABEL-first.png` and `LABEL-last.png`. The browser and its profile are gone when this returns,
    whatever happened.
    """
    if loads < 1:
        raise ValueError(f"loads={loads}: load the page at least once")
    from playwright.sync_api import sync_playwright  # a dev dependency; the lab runs without it

    requests: list[RequestSeen] = []
    by_request: dict[int, RequestSeen] = {}
    in_flight: set[int] = set()
    wire: list[dict] = []  # DevTools' responseReceived events of the page, in order
    page_loads: list[PageLoad] = []
    screenshots: list[str] = []
    shots = Path(screenshot_dir) if screenshot_dir is not None else None

    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        (Path(profile) / "Default").mkdir()
        (Path(profile) / "Default" / "Preferences").write_text(json.dumps(PROFILE_PREFERENCES))
        net_log = Path(profile) / "net-log.json"
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=binaries.chromium(), headless=True,
            args=[*CHROMIUM_ARGS, f"--log-net-log={net_log}"],
            viewport=VIEWPORT, service_workers="block", accept_downloads=False)
        try:
            def on_request(request) -> None:
                seen = RequestSeen(url=request.url, resource_type=request.resource_type, method=request.method)
                requests.append(seen)
                by_request[id(request)] = seen
                in_flight.add(id(request))

            def on_response(response) -> None:
                seen = by_request.get(id(response.request))
                if seen is not None:
                    seen.status = response.status
                    seen.replica = response.headers.get("x-replica")

            def on_failed(request) -> None:
                in_flight.discard(id(request))
                seen = by_request.get(id(request))
                if seen is not None:
                    seen.failure = request.failure

            context.on("request", on_request)
            context.on("response", on_response)
            context.on("requestfinished", lambda request: in_flight.discard(id(request)))
            context.on("requestfailed", on_failed)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(LOAD_TIMEOUT_MS)
            # Playwright does not expose which connection carried a response; the DevTools protocol does.
            devtools = context.new_cdp_session(page)
            devtools.on("Network.responseReceived", lambda event: wire.append(event))
            devtools.send("Network.enable")

            for index in range(1, loads + 1):
                if new_session_each_load:
                    context.clear_cookies()
                before = len(wire)
                response = page.goto(url, wait_until="load")
                if response is None:
                    raise RuntimeError(f"load {index} of {url}: the browser got no response")
                _wait_quiet(page, in_flight)
                documents = [event for event in wire[before:] if event.get("type") == "Document"]
                page_loads.append(_read_load(index, page, response, documents))
                if shots is not None and index in (1, loads):
                    shots.mkdir(parents=True, exist_ok=True)
                    path = shots / f"{label}-{'first' if index == 1 else 'last'}.png"
                    page.screenshot(path=str(path), full_page=True)
                    if str(path) not in screenshots:
                        screenshots.append(str(path))
        finally:
            context.close()
        for index in network_changes_before(net_log, url):
            if 1 <= index <= len(page_loads):
                page_loads[index - 1].after_network_change = True
    return ColorWalk(url=url, loads=page_loads, requests=requests, screenshots=screenshots,
                     responses=[_response_on_wire(event) for event in wire])


def _response_on_wire(event: dict) -> "ResponseOnWire":
    response = event["response"]
    headers = {name.lower(): value for name, value in response.get("headers", {}).items()}
    connection = response.get("connectionId")
    return ResponseOnWire(url=response["url"], resource_type=event.get("type", "").lower(),
                          status=response.get("status"), replica=headers.get("x-replica"),
                          connection_id=str(connection) if connection else None,
                          connection_reused=response.get("connectionReused"))


def _wait_quiet(page, in_flight: set) -> None:
    """Wait until no request of the browser has been running for QUIET_PERIOD_S, as Playwright's
    "networkidle" does, but counting the browser's own requests too: the site icon is fetched just
    after the load event, and the next load must find the connection idle, as a person's next
    click would, rather than cancel the icon and open a second connection."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    quiet_since = time.monotonic()
    while True:
        now = time.monotonic()
        if in_flight:
            quiet_since = now
        elif now - quiet_since >= QUIET_PERIOD_S:
            return
        if now > deadline:
            raise TimeoutError(f"{len(in_flight)} browser request(s) still running after {QUIET_TIMEOUT_S:.0f}s")
        page.wait_for_timeout(25)  # lets Playwright deliver the pending request events


def _read_load(index: int, page, response, document_events: list[dict]) -> PageLoad:
    seen = page.evaluate(_READ_PAGE_JS)
    network = document_events[-1]["response"] if document_events else {}
    cat = seen["cat"] or {}
    return PageLoad(
        index=index,
        status=response.status,
        color=_hex(seen["background"]) if seen["background"] and seen["background"][3] > 0 else "transparent",
        declared_color=seen["declared_color"],
        replica=seen["replica"],
        header_replica=response.headers.get("x-replica"),
        connection_id=str(network["connectionId"]) if "connectionId" in network else None,
        connection_reused=network.get("connectionReused"),
        cat_src=cat.get("src"),
        cat_natural_width=int(cat.get("natural_width") or 0),
        texts=[_contrast(text) for text in seen["texts"]],
    )


def _contrast(text: dict) -> TextContrast:
    r, g, b, alpha = text["color"]
    background = text["background"]
    # Text drawn with transparency shows the background through it.
    color = [c * alpha + bg * (1 - alpha) for c, bg in zip((r, g, b), background, strict=True)]
    large = text["font_size_px"] >= 24 or (text["font_size_px"] >= 18.66 and text["font_weight"] >= 700)
    return TextContrast(text=text["text"], color=_hex(color), background=_hex(background),
                        ratio=round(contrast_ratio(color, background), 2), required=AA_LARGE if large else AA_NORMAL)


def contrast_ratio(first, second) -> float:
    """WCAG 2.x contrast ratio of two sRGB colors given as 0-255 triples (1.0 to 21.0)."""
    lighter, darker = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def relative_luminance(rgb) -> float:
    def linear(channel: float) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _hex(rgb) -> str:
    if rgb is None:
        return "none"
    return "#" + "".join(f"{round(c):02x}" for c in rgb[:3])


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
