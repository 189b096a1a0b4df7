"""`helm test` check of sqrt through its Service: `/` answers OK!, a bad `iterations` is a 400."""

import os
import sys
import urllib.error
import urllib.request

BASE_URL = os.environ["SQRT_URL"].rstrip("/")


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


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
