"""In-cluster load for the HPA demo: CONCURRENCY loops, each GET TARGET_URL then pause, forever.

Errors are counted, not fatal: while the HPA adds pods some requests may fail, and the load must
go on. Prints one line of totals every 10 seconds.
"""

import os
import threading
import time
import urllib.request

TARGET_URL = os.environ["TARGET_URL"]
CONCURRENCY = int(os.environ.get("CONCURRENCY", "4"))
PAUSE_SECONDS = float(os.environ.get("PAUSE_SECONDS", "0.01"))
counts = {"ok": 0, "failed": 0}
lock = threading.Lock()


def loop():
    while True:
        try:
            with urllib.request.urlopen(TARGET_URL, timeout=30) as response:
                response.read()
            outcome = "ok"
        except Exception:  # the load generator keeps going whatever the target answers
            outcome = "failed"
        with lock:
            counts[outcome] += 1
        time.sleep(PAUSE_SECONDS)


for _ in range(CONCURRENCY):
    threading.Thread(target=loop, daemon=True).start()
while True:
    time.sleep(10)
    with lock:
        print(f"requests ok={counts['ok']} failed={counts['failed']}", flush=True)
