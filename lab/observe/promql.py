"""A client of Prometheus' HTTP query API (/api/v1/query, /api/v1/query_range).

Every failure is a PromQLError whose message is one line naming the query and the reason: the
server does not answer, answers an HTTP error, rejects the expression, or finds no data. An empty
result is an error, never an empty list: a check over no data must not pass silently.
"""

import json
import math
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_TIMEOUT = 10.0


class PromQLError(RuntimeError):
    """A query that gave no usable answer; str() is one line with the reason and the query."""

    def __init__(self, reason: str, query: str):
        self.reason, self.query = reason, query
        super().__init__(f"{reason}: {query}")


def _one_line(text: str, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


class PromQL:
    """Queries against the Prometheus at `url` (http://host:port)."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT):
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _get(self, path: str, params: dict, query: str) -> dict:
        address = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(address, timeout=self.timeout) as response:
                body = json.loads(response.read().decode())
        except urllib.error.HTTPError as error:
            # Prometheus explains a bad expression (400) or a timeout (503) in its JSON body.
            try:
                detail = json.loads(error.read().decode()).get("error", "")
            except (ValueError, OSError):
                detail = ""
            raise PromQLError(f"Prometheus at {self.url} answered HTTP {error.code}"
                              + (f" ({_one_line(detail)})" if detail else ""), query) from None
        except (OSError, ValueError) as error:
            reason = getattr(error, "reason", error)
            raise PromQLError(f"Prometheus at {self.url} is unreachable ({_one_line(reason)})", query) from None
        if body.get("status") != "success":
            raise PromQLError(f"Prometheus at {self.url} refused the query "
                              f"({_one_line(body.get('error', 'no reason given'))})", query)
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict]:
        """The instant vector of `expr` at epoch second `at` (now when None): a list of
        {"metric": {...}, "value": [t, "v"]}; PromQLError when empty."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        data = self._get("/api/v1/query", params, expr)
        result = data["result"]
        if data.get("resultType") == "scalar":
            result = [{"metric": {}, "value": result}]
        if not result:
            raise PromQLError("no data", expr)
        return result

    def value(self, expr: str, at: float | None = None) -> float:
        """The one number `expr` gives at `at`; PromQLError when it gives none, several, or NaN."""
        result = self.query(expr, at)
        if len(result) != 1:
            raise PromQLError(f"{len(result)} series where one was expected (aggregate it)", expr)
        value = float(result[0]["value"][1])
        if math.isnan(value):
            raise PromQLError("the value is NaN (no samples to divide by)", expr)
        return value

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        """The range vector of `expr` from `start` to `end` every `step` seconds: a list of
        {"metric": {...}, "values": [[t, "v"], ...]}; PromQLError when empty."""
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
        result = self._get("/api/v1/query_range", params, expr)["result"]
        if not result:
            raise PromQLError("no data", expr)
        return result

    def series(self, expr: str, start: float, end: float, step: float) -> list[tuple[float, float]]:
        """(t, value) pairs of the one series `expr` gives over the range."""
        result = self.query_range(expr, start, end, step)
        if len(result) != 1:
            raise PromQLError(f"{len(result)} series where one was expected (aggregate it)", expr)
        return [(float(t), float(v)) for t, v in result[0]["values"]]

    def ready(self) -> bool:
        """Whether the server answers its readiness endpoint."""
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=min(self.timeout, 2.0)) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False

    def last_scrape(self) -> float:
        """The epoch second of the newest scrape of any target."""
        return self.value("max(timestamp(up))")
