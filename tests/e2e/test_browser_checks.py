"""The browser walk's own checks can fail: a page that is unreadable, whose picture is broken,
whose painted color differs from the one it declares, and that asks another host for something,
is reported as such. The page is served on loopback by a throwaway HTTP server in a thread."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psutil
import pytest

from lab.experiments.browser import contrast_ratio, walk_colors
from lab.host.procs import LOOPBACK
from tests.conftest import require_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# Pale grey on white, a background other than the declared color, a missing cat, a foreign image.
BAD_PAGE = b"""<!doctype html><html><head><link rel="icon" href="data:,"></head>
<body data-color="#000000" data-replica="bad-0" style="background:#ffffff;color:#eeeeee">
<p>hard to read</p><img src="/static/cat.svg" alt="cat"><img src="http://elsewhere.invalid/pixel.png" alt="">
</body></html>"""


class BadPage(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("X-Replica", "bad-0")
            self.end_headers()
            self.wfile.write(BAD_PAGE)
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture
def bad_page_url():
    server = ThreadingHTTPServer((LOOPBACK, 0), BadPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_contrast_ratio_follows_wcag():
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21.0)
    assert contrast_ratio((255, 255, 255), (255, 255, 255)) == pytest.approx(1.0)
    assert contrast_ratio((0x77, 0x77, 0x77), (255, 255, 255)) == pytest.approx(4.48, abs=0.01)  # just below AA


def test_walk_reports_what_a_person_would_see_on_a_bad_page(bad_page_url, tmp_path):
    require_browser()
    result = walk_colors(bad_page_url, loads=1, screenshot_dir=tmp_path, label="bad")

    [load] = result.loads
    assert load.color == "#ffffff" and load.declared_color == "#000000"
    assert not load.readable
    assert load.worst_contrast.ratio < 1.2 and load.worst_contrast.text == "hard to read"
    assert load.cat_natural_width == 0
    [foreign] = result.foreign_requests()
    assert foreign.url == "http://elsewhere.invalid/pixel.png"
    assert foreign.failure == "net::ERR_NAME_NOT_RESOLVED"  # the resolver rule answers "not found"
    assert [s.rsplit("/", 1)[1] for s in result.screenshots] == ["bad-first.png"]
    left = [p for p in psutil.Process().children(recursive=True) if "chrom" in " ".join(p.cmdline()).lower()]
    assert not left, f"browser processes left behind: {left}"
