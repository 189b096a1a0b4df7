"""Server-side session stores behind Flask-Session's interface: memory, Redis, Hazelcast.

Every store call is bounded by `STORE_TIMEOUT_SECONDS`. A store that is down never turns into a
500 or a hang: `open_session` marks the session as unavailable (the view answers 503) and a
failed save turns the response into a 503. Only the paths in SESSION_PATHS touch the store, so
probes, /metrics, /admin and static files never create a session nor wait for the store.
"""

import functools
import hmac
import logging
import os
import ssl
import threading
import time
import warnings
from datetime import timedelta

from cachelib import SimpleCache
from flask import Flask, Request, Response
from flask.sessions import SessionMixin
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from flask_session.cachelib import CacheLibSessionInterface
from itsdangerous import Signer
from itsdangerous.signer import HMACAlgorithm

from webgatos.settings import Settings

log = logging.getLogger(__name__)

SESSION_PATHS = frozenset({"/", "/api/session"})
SESSION_COOKIE_NAME = "webgatos_session"
STORE_UNAVAILABLE_MESSAGE = "Session store unavailable, try again shortly.\n"
HAZELCAST_MAP_NAME = "webgatos-sessions"
SIGNED_IDS_KEPT = 10_000  # recent sessions of one replica, about 3 MiB at most


class StoreUnavailable(Exception):
    """The session store did not answer within STORE_TIMEOUT_SECONDS (or refused)."""


class _OneCallHmac(HMACAlgorithm):
    """HMAC-SHA1 in one C call (`hmac.digest`) instead of building an `hmac.HMAC` object."""

    def get_signature(self, key: bytes, value: bytes) -> bytes:
        return hmac.digest(key, value, "sha1")


class SessionIdSigner(Signer):
    """The signer Flask-Session builds for every cookie (salt "flask-session", HMAC key derivation,
    SHA1), with the same signatures: its keys are derived once, not twice per request."""

    def __init__(self, secret_key: str | bytes):
        super().__init__(secret_key, salt="flask-session", key_derivation="hmac", algorithm=_OneCallHmac())
        self._derived_keys: dict[bytes | None, bytes] = {}
        # Every request checks its cookie's signature and signs the id again for the refreshed
        # cookie: both are pure functions of the id, so the answers for recent sessions are kept.
        # A bad signature raises, and is never kept.
        self.sign = functools.lru_cache(maxsize=SIGNED_IDS_KEPT)(self.sign)
        self.unsign = functools.lru_cache(maxsize=SIGNED_IDS_KEPT)(self.unsign)

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        try:
            return self._derived_keys[secret_key]
        except KeyError:
            derived = self._derived_keys[secret_key] = super().derive_key(secret_key)
            return derived


class ResilientSessions:
    """Mixin for a Flask-Session interface: store errors become StoreUnavailable handling."""

    store_errors: tuple[type[BaseException], ...] = (StoreUnavailable,)
    on_store_error = staticmethod(lambda operation: None)
    _signer: SessionIdSigner | None = None
    _signer_secret: str | bytes | None = None

    def _get_signer(self, app: Flask) -> Signer:
        if self._signer is None or self._signer_secret != app.secret_key:
            super()._get_signer(app)  # Flask-Session's check for a missing SECRET_KEY
            self._signer, self._signer_secret = SessionIdSigner(app.secret_key), app.secret_key
        return self._signer

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        if request.path not in SESSION_PATHS:
            return self.make_null_session(app)
        try:
            return super().open_session(app, request)
        except self.store_errors as error:
            self._log_failure("read", error)
            session = self.session_class(sid=self._generate_sid(self.sid_length), permanent=self.permanent)
            session.store_unavailable = True
            return session

    def save_session(self, app: Flask, session: ServerSideSession, response: Response) -> None:
        if getattr(session, "store_unavailable", False) or response.status_code >= 500:
            return
        try:
            if session and self.should_set_storage(app, session):
                self._store_with_cookie(app, session, response)
            else:
                super().save_session(app, session, response)  # an empty or deleted session
        except self.store_errors as error:
            self._log_failure("write", error)
            store_unavailable_response(response)

    def _store_with_cookie(self, app: Flask, session: ServerSideSession, response: Response) -> None:
        """Flask-Session's save of a session with data: the same store write and cookie, but one
        "Vary: Cookie" set directly. Flask-Session parses and rewrites the Vary header twice for
        it, a tenth of a memory-store request in the profile."""
        self._upsert_session(app.permanent_session_lifetime, session, self._get_store_id(session.sid))
        if self.should_set_cookie(app, session):
            response.set_cookie(self.get_cookie_name(app), self._sign(app, session.sid),
                                expires=self.get_expiration_time(app, session),
                                httponly=self.get_cookie_httponly(app), domain=self.get_cookie_domain(app),
                                path=self.get_cookie_path(app), secure=self.get_cookie_secure(app),
                                samesite=self.get_cookie_samesite(app))
        if "Vary" in response.headers:
            response.vary.add("Cookie")
        else:
            response.headers["Vary"] = "Cookie"

    def _log_failure(self, operation: str, error: BaseException) -> None:
        self.on_store_error(operation)
        log.warning("session store %s failed: %s: %s", operation, type(error).__name__, error)

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers within the timeout (memory always does)."""

    def close(self) -> None:
        """Release the store's connections."""


def store_unavailable_response(response: Response) -> Response:
    """Turn `response` into the short 503 a client gets while the store is down."""
    response.status_code = 503
    response.set_data(STORE_UNAVAILABLE_MESSAGE)
    response.mimetype = "text/plain"
    response.headers["Retry-After"] = "1"
    response.headers.pop("Set-Cookie", None)
    return response


class MemorySessions(ResilientSessions, CacheLibSessionInterface):
    """Sessions in this process's memory: the non-scalable variant of the talk."""


def drain_then_clear(waker) -> None:
    """`handle_read` for the Hazelcast client's pipe waker: drain the pipe, then clear `awake`.

    The client (5.7.0) clears `awake` first and drains after. A worker thread that calls `wake()`
    in between sets `awake` and writes a byte that the drain then swallows: `awake` stays set with
    an empty pipe, every later `wake()` is skipped, and each request waits out the reactor's 10 ms
    poll before it is sent (the Hazelcast path's ~20 ms p95). Clearing after the drain is safe:
    a `wake()` skipped meanwhile queued its bytes before the reactor's next poll checks writability.
    """
    try:
        while len(os.read(waker._read_fd, 4096)) == 4096:
            pass
    except OSError:
        pass
    waker.awake = False


def install_draining_waker() -> None:
    """Make every new client reactor wake through a `_PipedWaker` whose `handle_read` is
    `drain_then_clear`; the client's own class stays as shipped."""
    from hazelcast import reactor

    waker_class = reactor._WakeableLoop._waker_class
    if waker_class is not reactor._PipedWaker:
        return  # already installed, or a platform without the pipe waker (Windows)
    reactor._WakeableLoop._waker_class = type(
        "DrainingPipedWaker", (reactor._PipedWaker,), {"handle_read": drain_then_clear}
    )


def install_direct_writes() -> None:
    """Make the client's connections send from the calling thread when nothing is queued.

    The client (5.7.0) queues every outgoing message and wakes its reactor thread, which sends
    it: two thread hand-offs per call, one on the way out and one back. Sending straight from the
    worker thread when the queue is empty removes the first (a map get back to back: 237 -> 192 us,
    client CPU 147 -> 106 us per call on the 2-core bench machine). A lock keeps the byte order:
    whatever is queued goes first, and a partial send queues its rest for the reactor.
    """
    from hazelcast import reactor

    if getattr(reactor.AsyncoreReactor, "connection_factory", None) is _direct_write_connection_factory:
        return
    reactor.AsyncoreReactor.connection_factory = _direct_write_connection_factory


def _direct_write_connection_factory(self, connection_manager, connection_id, address, config, message_callback):
    return _direct_write_connection_class()(self, connection_manager, connection_id, address, config,
                                            message_callback)


@functools.cache
def _direct_write_connection_class():
    from hazelcast import reactor

    class DirectWriteConnection(reactor.AsyncoreConnection):
        sends_directly = False

        def __init__(self, *args, **kwargs):
            self._write_lock = threading.RLock()  # re-entrant: a failed send may close from within
            super().__init__(*args, **kwargs)
            self.sends_directly = not isinstance(self.socket, ssl.SSLSocket)  # TLS stays with the reactor

        def _write(self, buf):
            with self._write_lock:
                if not self._write_queue and self.sent_protocol_bytes and self.live and self.sends_directly:
                    try:
                        sent = self.socket.send(buf)
                    except OSError:
                        sent = 0  # would block, or a failure the reactor's own send will report
                    if sent:
                        self._reactor.bytes_sent += sent
                        self.last_write_time = time.time()
                        if sent == len(buf):
                            return
                        buf = buf[sent:]
                self._write_queue.append(buf)
            self._reactor.wake_loop()

        def handle_write(self):
            with self._write_lock:
                if self._write_queue:  # a worker may have emptied it since the reactor's poll
                    super().handle_write()

    return DirectWriteConnection


def wait_for(future, timeout: float) -> bool:
    """Whether the client's future completed within `timeout` seconds.

    `Future.result()` waits without a bound; this waits on the condition the future itself sets
    (client 5.7.0's `_event.condition`, a test pins it) instead of adding a callback that sets an
    Event of our own: one lock and one wake-up per call, not three.
    """
    if future.done():  # also the client's immediate futures, which have no condition
        return True
    event = future._event
    with event.condition:
        return event._flag or (event.condition.wait(timeout) and event._flag)


class HazelcastSessions(ResilientSessions, ServerSideSessionInterface):
    """Sessions in a Hazelcast map, one entry per session with the session TTL.

    The client starts asynchronously and reconnects in the background (ReconnectMode.ASYNC): while
    the cluster is unreachable every call fails at once with ClientOfflineError instead of
    blocking, and every invocation is bounded by the store timeout.
    """

    session_class = ServerSideSession
    ttl = True

    def __init__(self, app: Flask, settings: Settings, **kwargs):
        import hazelcast
        from hazelcast.config import ReconnectMode

        install_draining_waker()
        install_direct_writes()

        self.client = hazelcast.HazelcastClient(
            cluster_members=list(settings.hazelcast_members),
            cluster_name=settings.hazelcast_cluster_name,
            async_start=True,
            reconnect_mode=ReconnectMode.ASYNC,
            cluster_connect_timeout=-1,  # keep trying in the background: the app recovers by itself
            connection_timeout=settings.store_timeout_seconds,
            invocation_timeout=settings.store_timeout_seconds,
            retry_max_backoff=2.0,
            statistics_enabled=False,
            # Backup acks go member to member: sent to the client, an ack is lost while the client
            # has no connection yet to the backup's member, and each write then waits out the
            # 5 s backup timeout (seen on the first writes after start-up).
            backup_ack_to_client_enabled=False,
        )
        self.timeout = settings.store_timeout_seconds
        self._sessions = None
        super().__init__(app, **kwargs)

    @property
    def sessions(self):
        """The map proxy, made on first use: making it needs the cluster, start-up must not."""
        if self._sessions is None:
            try:
                self._sessions = self.client.get_map(HAZELCAST_MAP_NAME)
            except Exception as error:  # ClientOfflineError while the client is not connected yet
                raise StoreUnavailable(f"{type(error).__name__}: {error}") from error
        return self._sessions

    def _call(self, future):
        """The result of a client call within the store timeout. The client's invocation timeout
        bounds retries only: a call already sent on a live connection would wait for ever."""
        if not wait_for(future, self.timeout):
            raise StoreUnavailable(f"no answer from Hazelcast within {self.timeout:g}s")
        try:
            return future.result()
        except Exception as error:  # HazelcastError, ClientOfflineError, OperationTimeoutError, ...
            raise StoreUnavailable(f"{type(error).__name__}: {error}") from error

    def _retrieve_session_data(self, store_id: str) -> dict | None:
        data = self._call(self.sessions.get(store_id))
        return None if data is None else self.serializer.decode(bytes(data))

    def _delete_session(self, store_id: str) -> None:
        self._call(self.sessions.delete(store_id))

    def _upsert_session(self, session_lifetime: timedelta, session: ServerSideSession, store_id: str) -> None:
        ttl = int(session_lifetime.total_seconds())
        # bytearray is a Hazelcast native type (byte[]); bytes would go through pickle.
        self._call(self.sessions.set(store_id, bytearray(self.serializer.encode(session)), ttl=ttl))

    def ping(self) -> None:
        if not self.client.lifecycle_service.is_running():
            raise StoreUnavailable("Hazelcast client is shut down")
        self._call(self.sessions.contains_key("readyz"))

    def close(self) -> None:
        self.client.shutdown()


def make_session_interface(app: Flask, settings: Settings, on_store_error) -> ResilientSessions:
    """The session interface for `settings.session_store`; the cookie holds a signed opaque id."""
    common = {"key_prefix": "session:", "use_signer": True, "permanent": True, "sid_length": 32,
              "serialization_format": "msgpack"}
    with warnings.catch_warnings():
        # Flask-Session 0.8 deprecates use_signer; we keep it so SECRET_KEY signs the id and a
        # tampered cookie is rejected before any store lookup.
        warnings.simplefilter("ignore", DeprecationWarning)
        if settings.session_store == "memory":
            interface = MemorySessions(app, client=SimpleCache(threshold=100_000,
                                                               default_timeout=settings.session_ttl_seconds),
                                       **common)
        elif settings.session_store == "redis":
            from webgatos.redis_store import RedisSessions, redis_client  # redis-py is a tenth of a second to import

            interface = RedisSessions(app, client=redis_client(settings), **common)
        else:
            interface = HazelcastSessions(app, settings, **common)
    interface.on_store_error = on_store_error
    return interface
