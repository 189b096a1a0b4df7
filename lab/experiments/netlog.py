"""Chromium's net log (`--log-net-log=FILE`), read for what a walk needs to know: when the machine's
network changed.

Chromium drops every idle connection when the machine's network changes (an address or a link
comes or goes: a Pod started by a cluster on this machine is enough). Its net log records each
such change, so a walk can tell a page sent on a new connection for that reason from one that
was not.
"""

import json
from pathlib import Path

NETWORK_CHANGE_EVENTS = frozenset({"NETWORK_IP_ADDRESSES_CHANGED", "NETWORK_CHANGED"})


def network_changes_before(net_log: Path, url: str) -> set[int]:
    """The 1-based indexes of the page loads of `url` that Chromium's net log shows started after a
    network change that followed the previous load's start. A log cut short (the browser did not
    close it) is read up to its last whole event."""
    try:
        text = net_log.read_text()
    except OSError:
        return set()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        log = json.loads(text[:text.rfind("}") + 1].rstrip().rstrip(",") + "]}") if "}" in text else {}
    names = {number: name for name, number in log.get("constants", {}).get("logEventTypes", {}).items()}
    after: set[int] = set()
    loads_started, changed = 0, False
    for event in log.get("events", []):
        name = names.get(event.get("type"))
        if name in NETWORK_CHANGE_EVENTS:
            changed = loads_started > 0
        elif name == "URL_REQUEST_START_JOB" and (event.get("params") or {}).get("url") == url:
            loads_started += 1
            if changed:
                after.add(loads_started)
            changed = False
    return after
