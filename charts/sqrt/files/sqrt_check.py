"""`helm test` check of sqrt through its Service: `/` answers OK!, a bad `iterations` is a 400.
First it waits, up to SERVICE_WAIT_SECONDS, for the Service to accept connections (/readyz):
kube-proxy may program it a moment after `helm install --wait` returns. (A hook ships alone in its
chart, so webgatos's check has the same wait.)"""

import os
import sys
import time
import urllib.error
import urllib.request

BASE_URL = os.environ["SQRT_URL"].rstrip("/")
SERVICE_WAIT_SECONDS = int(os.environ.get("SERVICE_WAIT_SECONDS", "30"))


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def wait_for_service():
    """Return once the Service answers /readyz at all (any HTTP status); fail after SERVICE_WAIT_SECONDS."""
    deadline = time.monotonic() + SERVICE_WAIT_SECONDS
    reason = "no attempt"
    for _ in range(SERVICE_WAIT_SECONDS + 1):
        try:
            with urllib.request.urlopen(f"{BASE_URL}/readyz", timeout=10):
                return
        except urllib.error.HTTPError:
            return
        except OSError as error:  # refused or unreachable: the Service is not programmed yet
            reason = error
        if time.monotonic() >= deadline:
            break
        time.sleep(1)
    fail(f"{BASE_URL} accepted no connection within {SERVICE_WAIT_SECONDS}s: {reason}")


wait_for_service()
try:
    with urllib.request.urlopen(f"{BASE_URL}/?iterations=1000", timeout=30) as response:
        body = response.read().decode()
except Exception as error:  # any transport or HTTP error ends the check with its reason
    fail(f"GET {BASE_URL}/?iterations=1000: {error}")
if "OK!" not in body:
    fail(f"GET / answered {body[:80]!r}, expected OK!")
try:
    urllib.request.urlopen(f"{BASE_URL}/?iterations=not-a-number", timeout=30)
    fail("GET /?iterations=not-a-number was accepted, expected 400")
except urllib.error.HTTPError as error:
    if error.code != 400:
        fail(f"GET /?iterations=not-a-number answered {error.code}, expected 400")
print("OK: / computes, bad iterations is a 400")
