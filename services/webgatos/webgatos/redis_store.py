"""Sessions in Redis, imported only with SESSION_STORE=redis: redis-py takes about a tenth of a
second to import, a quarter of the app's import time with the other stores."""

from collections.abc import Callable
from datetime import timedelta

import redis
from flask_session.base import ServerSideSession
from flask_session.redis import RedisSessionInterface
from redis.backoff import NoBackoff
from redis.retry import Retry

from webgatos.settings import Settings
from webgatos.stores import ResilientSessions, StoreUnavailable


class RedisSessions(ResilientSessions, RedisSessionInterface):
    """Sessions in Redis: a GET when a request opens the session, a SET with the TTL when it saves.

    Each goes straight to a connection (redis-py's `send_command` and `read_response`): the
    client's own per-command path (retry wrapper, observability hooks, reply callbacks) took over
    a third of each command's CPU, for features these two commands do not use (no retries). The
    connections are kept in a plain list rather than checked out of the client's pool: its
    checkout and release (locks, metrics, events) cost as much again, about 16 µs a command.
    """

    store_errors = (StoreUnavailable, redis.RedisError)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._idle_connections: list[redis.Connection] = []  # pop and append are atomic: no lock

    def _command(self, *args):
        try:
            connection = self._idle_connections.pop()
        except IndexError:
            connection = self.client.connection_pool.make_connection()  # bounded by max_connections
        try:
            connection.connect()  # no-op when connected; a refused connect fails here, once
            try:
                stale = connection.can_read()  # a connection at rest has nothing to read...
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                stale = True  # ...unless Redis closed it (restarted): as the pool does, reconnect
            if stale:
                connection.disconnect()
            connection.send_command(*args)  # connects again if it had to drop the old socket
            return connection.read_response()
        except BaseException:
            connection.disconnect()  # whatever broke off the exchange, a late reply must not be read as the next one's
            raise
        finally:
            self._idle_connections.append(connection)

    def route_through_client_when(self, traced: Callable[[], bool]) -> None:
        """While `traced()` holds, send the commands through the client's own per-command path,
        where OpenTelemetry's Redis instrumentation hooks (tracing.py); else the fast path."""
        fast, through_client = self._command, self.client.execute_command
        self._command = lambda *args: through_client(*args) if traced() else fast(*args)

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        data = self._command("GET", store_id)
        return self.serializer.decode(data) if data else None

    def _upsert_session(self, session_lifetime: timedelta, session: ServerSideSession, store_id: str) -> None:
        self._command("SET", store_id, self.serializer.encode(session), "EX", int(session_lifetime.total_seconds()))

    def ping(self) -> None:
        try:
            self.client.ping()
        except redis.RedisError as error:
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    def close(self) -> None:
        while self._idle_connections:
            self._idle_connections.pop().disconnect()
        self.client.close()


def redis_client(settings: Settings) -> redis.Redis:
    # No retries and short socket timeouts: a dead Redis costs one bounded attempt, never a hang.
    return redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.store_timeout_seconds,
        socket_connect_timeout=settings.store_timeout_seconds,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        max_connections=64,
    )
