"""`helm test` check of webgatos's session contract, run through the Service.

One client (one cookie jar) asks /api/session REQUESTS times. With a shared store every answer
must carry the same color and count the visits; with the memory store and several replicas the
color may change (that is the lesson), so only the answer's shape is checked and the replicas seen
are printed. Exit status 1 with one line saying what broke.
"""

import http.cookiejar
import json
import os
import re
import sys
import urllib.request

BASE_URL = os.environ["WEBGATOS_URL"].rstrip("/")
REQUESTS = int(os.environ.get("REQUESTS", "6"))
EXPECT_SHARED = os.environ.get("EXPECT_SHARED_SESSIONS", "true") == "true"
TIMEOUT_SECONDS = 10


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
answers = []
for number in range(1, REQUESTS + 1):
    try:
        with opener.open(f"{BASE_URL}/api/session", timeout=TIMEOUT_SECONDS) as response:
            body = json.load(response)
    except Exception as error:  # any transport or HTTP error ends the check with its reason
        fail(f"request {number} to {BASE_URL}/api/session: {error}")
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
print(f"OK: {REQUESTS} requests, store {first['store']}, color {first['color']}, replicas seen: {', '.join(replicas)}")
