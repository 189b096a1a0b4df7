"""The one place that reads webgatos's environment. Everything else receives a `Settings`.

A bad value raises `SettingsError` whose message is one line naming the variable and the
accepted forms; the gunicorn config turns it into a clean exit at start-up.
"""

import os
import re
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from service_common.settings import EnvReader, ServerSettings, SettingsError

SESSION_STORES = ("memory", "redis", "hazelcast")
# OpenTelemetry's own name for the Zipkin exporter's endpoint; unset, webgatos makes no spans.
ZIPKIN_ENDPOINT_VARIABLE = "OTEL_EXPORTER_ZIPKIN_ENDPOINT"
# Printable ASCII without spaces (it travels in an Authorization header), long enough not to guess.
_ADMIN_TOKEN = re.compile(r"^[\x21-\x7e]{16,256}$")
_HOST_PORT = re.compile(r"^(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Settings(ServerSettings):
    session_store: str = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    hazelcast_members: tuple[str, ...] = ("127.0.0.1:5701",)
    hazelcast_cluster_name: str = "dev"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    session_ttl_seconds: int = 1800
    store_timeout_seconds: float = 1.0
    fault_error_rate: float = 0.0
    fault_error_status: int = 503
    fault_delay_seconds: float = 0.0
    replica_name: str = field(default_factory=socket.gethostname)
    pod_ip: str | None = None  # the downward API's status.podIP; else the host's own address
    admin_token: str | None = field(default=None, repr=False)  # None: the admin API answers 403
    threads: int = 8
    zipkin_endpoint: str | None = None  # where spans go (Zipkin v2 JSON); None: no tracing

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        reader = EnvReader(env)
        store = reader.text("SESSION_STORE", "memory").lower()
        if store not in SESSION_STORES:
            raise SettingsError(f"SESSION_STORE={store!r} is not valid: use one of {', '.join(SESSION_STORES)}")
        settings = cls(
            session_store=store,
            redis_url=_redis_url(reader.text("REDIS_URL", cls.redis_url)),
            hazelcast_members=_hazelcast_members(reader.text("HAZELCAST_MEMBERS", "127.0.0.1:5701")),
            hazelcast_cluster_name=reader.text("HAZELCAST_CLUSTER_NAME", cls.hazelcast_cluster_name),
            secret_key=env.get("SECRET_KEY") or secrets.token_hex(32),
            session_ttl_seconds=reader.integer("SESSION_TTL_SECONDS", cls.session_ttl_seconds, 1, 31 * 24 * 3600),
            store_timeout_seconds=reader.number("STORE_TIMEOUT_SECONDS", cls.store_timeout_seconds, 0.05, 30.0),
            fault_error_rate=reader.number("FAULT_ERROR_RATE", cls.fault_error_rate, 0.0, 1.0),
            fault_error_status=reader.integer("FAULT_ERROR_STATUS", cls.fault_error_status, 500, 599),
            fault_delay_seconds=reader.number("FAULT_DELAY_SECONDS", cls.fault_delay_seconds, 0.0, 60.0),
            replica_name=env.get("REPLICA_NAME") or env.get("HOSTNAME") or socket.gethostname(),
            pod_ip=reader.raw("POD_IP"),
            admin_token=_admin_token(reader.raw("ADMIN_TOKEN")),
            zipkin_endpoint=_zipkin_endpoint(reader.raw(ZIPKIN_ENDPOINT_VARIABLE)),
            **cls.server_values(reader),
        )
        settings.check_workers(settings.workers)
        return settings

    def check_workers(self, workers: int) -> None:
        """The memory store lives in one process: several workers would each hold their own."""
        if self.session_store == "memory" and workers > 1:
            raise SettingsError(
                f"WEB_CONCURRENCY={workers}: SESSION_STORE=memory keeps sessions inside one process, so it needs "
                "exactly 1 worker (scale with GUNICORN_THREADS, or use SESSION_STORE=redis or hazelcast)")


def _admin_token(token: str | None) -> str | None:
    if token is not None and not _ADMIN_TOKEN.match(token):
        # The value is a secret: the message says what is wrong with it, never what it is.
        raise SettingsError(f"ADMIN_TOKEN is not valid ({len(token)} characters): use 16 to 256 printable ASCII "
                            "characters without spaces, e.g. the chart's generated Secret")
    return token


def _zipkin_endpoint(url: str | None) -> str | None:
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        valid = parts.port != 0 and parts.scheme in ("http", "https") and bool(parts.hostname) and not parts.fragment
    except ValueError:  # a port out of range or not a number
        valid = False
    if not valid:
        raise SettingsError(f"{ZIPKIN_ENDPOINT_VARIABLE}={url!r} is not valid: use http[s]://host[:port]/path, "
                            "e.g. http://zipkin:9411/api/v2/spans")
    return url


def _redis_url(url: str) -> str:
    accepted = "use redis://[:password@]host:port/db or rediss://..."
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError when not a number in range
    except ValueError:
        raise SettingsError(f"REDIS_URL={url!r} is not valid: {accepted}") from None
    path = parts.path.lstrip("/")
    if (parts.scheme not in ("redis", "rediss") or not parts.hostname or port is None
            or (path and not path.isdigit()) or parts.query or parts.fragment):
        raise SettingsError(f"REDIS_URL={url!r} is not valid: {accepted}")
    return url


def _hazelcast_members(value: str) -> tuple[str, ...]:
    members = tuple(member.strip() for member in value.split(","))
    for member in members:
        match = _HOST_PORT.match(member)
        if not match or not 1 <= int(match["port"]) <= 65535:
            raise SettingsError(f"HAZELCAST_MEMBERS={value!r} is not valid: use comma-separated host:port, "
                                "e.g. 10.0.0.5:5701,hazelcast-1:5701")
    return members
