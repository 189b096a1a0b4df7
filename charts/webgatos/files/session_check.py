"""`helm test` check of webgatos's session contract, run through the Service.

One client (one cookie jar) asks /api/session REQUESTS times. With a shared store every answer
must carry the same color and count the visits; with the memory store and several replicas the
color may change (that is the lesson), so only the answer's shape is checked and the replicas seen
are printed. When the release injects faults of its own (faults.errorRate), the check retries an
answer that says so (`Injected fault`) up to RETRY_INJECTED_FAULTS times, as the mesh's retries
would for a real client: this Pod has no sidecar. First it waits, up to SERVICE_WAIT_SECONDS, for
the Service to accept connections (/readyz): `helm install --wait` returns when the Pods are ready,
and kube-proxy may program the Service a moment later. Exit status 1 with one line saying what broke.
"""

import http.cookiejar
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

BASE_URL = os.environ["WEBGATOS_URL"].rstrip("/")
REQUESTS = int(os.environ.get("REQUESTS", "6"))
EXPECT_SHARED = os.environ.get("EXPECT_SHARED_SESSIONS", "true") == "true"
RETRY_INJECTED_FAULTS = int(os.environ.get("RETRY_INJECTED_FAULTS", "0"))
TIMEOUT_SECONDS = 10
SERVICE_WAIT_SECONDS = int(os.environ.get("SERVICE_WAIT_SECONDS", "30"))


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def get_session(number):
    """One request's JSON answer; retries the release's own injected faults when told to."""
    global retried
    for attempt in range(RETRY_INJECTED_FAULTS + 1):
        try:
            with opener.open(f"{BASE_URL}/api/session", timeout=TIMEOUT_SECONDS) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            injected = error.read(64).startswith(b"Injected fault")
            if not injected or attempt == RETRY_INJECTED_FAULTS:
                fail(f"request {number} to {BASE_URL}/api/session: {error}"
                     f"{' (injected, after ' + str(attempt) + ' retries)' if injected else ''}")
            retried += 1
        except Exception as error:  # any transport error ends the check with its reason
            fail(f"request {number} to {BASE_URL}/api/session: {error}")


def wait_for_service():
    """Return once the Service answers /readyz at all (any HTTP status); fail after SERVICE_WAIT_SECONDS."""
    deadline = time.monotonic() + SERVICE_WAIT_SECONDS
    reason = "no attempt"
    for _ in range(SERVICE_WAIT_SECONDS + 1):
        try:
            with urllib.request.urlopen(f"{BASE_URL}/readyz", timeout=TIMEOUT_SECONDS):
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
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
answers = []
retried = 0
for number in range(1, REQUESTS + 1):
    body = get_session(number)
    for key in ("color", "hostname", "ip", "store", "new", "visits"):
        if key not in body:
            fail(f"request {number}: answer lacks {key!r}: {body}")
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", str(body["color"])):
        fail(f"request {number}: color {body['color']!r} is not #rrggbb")
    answers.append(body)

first = answers[0]
if first["new"] is not True:
    fail(f"first request did not start a new session: {first}")
replicas = sorted({answer["hostname"] for answer in answers})
if EXPECT_SHARED:
    for number, answer in enumerate(answers[1:], start=2):
        if answer["new"] or answer["color"] != first["color"]:
            fail(f"request {number} lost the session (store {answer['store']}): {first['color']} -> {answer}")
    visits = [answer["visits"] for answer in answers]
    if visits != sorted(visits) or visits[-1] <= visits[0]:
        fail(f"visits do not increase within one session: {visits}")
print(f"OK: {REQUESTS} requests, store {first['store']}, color {first['color']}, replicas seen: {', '.join(replicas)}"
      f"{f', {retried} injected faults retried' if retried else ''}")
