"""Reading Chromium's net log: which page loads came after a network change (lab/experiments/netlog.py),
and how a walk (lab/experiments/browser.py) groups its loads by connection around one."""

import json

from lab.experiments.browser import ColorWalk, PageLoad
from lab.experiments.netlog import network_changes_before

URL = "http://127.0.0.1:8080/"
TYPES = {"URL_REQUEST_START_JOB": 2, "NETWORK_IP_ADDRESSES_CHANGED": 7, "NETWORK_CHANGED": 8, "SOCKET_BYTES_SENT": 9}


def write_log(path, names_and_urls, whole=True):
    events = [{"type": TYPES[name], "params": {"url": url} if url else {}} for name, url in names_and_urls]
    text = json.dumps({"constants": {"logEventTypes": TYPES}, "events": events})
    if not whole:  # as a browser that did not exit leaves it: no closing brackets, a trailing comma
        text = text[:-2] + ","
    path.write_text(text)
    return path


def test_a_change_between_two_loads_marks_the_later_load(tmp_path):
    log = write_log(tmp_path / "log.json", [
        ("NETWORK_CHANGED", None),  # before the first load: nothing was kept yet
        ("URL_REQUEST_START_JOB", URL),
        ("URL_REQUEST_START_JOB", URL + "cat.svg"),
        ("URL_REQUEST_START_JOB", URL),
        ("NETWORK_IP_ADDRESSES_CHANGED", None),
        ("NETWORK_CHANGED", None),
        ("SOCKET_BYTES_SENT", None),
        ("URL_REQUEST_START_JOB", URL),
        ("URL_REQUEST_START_JOB", URL),
    ])

    assert network_changes_before(log, URL) == {3}


def test_a_log_cut_short_is_read_to_its_last_whole_event(tmp_path):
    log = write_log(tmp_path / "log.json", [
        ("URL_REQUEST_START_JOB", URL), ("NETWORK_CHANGED", None), ("URL_REQUEST_START_JOB", URL),
    ], whole=False)

    assert network_changes_before(log, URL) == {2}


def test_no_log_means_no_change_is_known(tmp_path):
    assert network_changes_before(tmp_path / "absent.json", URL) == set()


def load(index, connection, after_network_change=False):
    return PageLoad(index=index, status=200, color="#ffffff", declared_color="#ffffff", replica="webgatos-0",
                    header_replica="webgatos-0", connection_id=connection, connection_reused=index > 1,
                    cat_src=None, cat_natural_width=0, after_network_change=after_network_change)


def test_a_network_change_ends_a_connection_run_even_on_the_same_connection_id():
    walk = ColorWalk(url=URL, loads=[load(1, "7"), load(2, "7"), load(3, "7", after_network_change=True)],
                     requests=[], screenshots=[])

    assert [[page.index for page in run] for run in walk.connection_runs()] == [[1, 2], [3]]
    assert "load  3" in walk.summary() and "after a network change" in walk.summary().splitlines()[3]
