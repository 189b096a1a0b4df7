"""The Hazelcast client's reactor waker, with a worker's `wake()` landing in the middle of the
reactor's `handle_read` (the interleaving that left requests waiting out the 10 ms poll)."""

import os
import threading
import time

import pytest
from hazelcast import reactor
from hazelcast.future import Future, ImmediateExceptionFuture, ImmediateFuture
from hazelcast.reactor import _PipedWaker
from webgatos.stores import drain_then_clear, install_draining_waker, wait_for


@pytest.fixture
def waker():
    waker = _PipedWaker({})
    yield waker
    waker.close()


def pipe_has_a_byte(waker) -> bool:
    try:
        return bool(os.read(waker._read_fd, 1))
    except BlockingIOError:
        return False


def wake_during_drain(monkeypatch, waker):
    """The reactor was woken (awake, one byte in the pipe); a worker wakes it again during the drain."""
    waker.wake()
    real_read = os.read
    woken = []

    def read_with_a_wake_in_between(fd, size):
        if not woken:
            woken.append(True)
            waker.wake()
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", read_with_a_wake_in_between)
    return woken


def test_the_pinned_clients_own_handle_read_can_stick_awake(monkeypatch, waker):
    # If this starts failing, the client fixed its waker and drain_then_clear can go.
    wake_during_drain(monkeypatch, waker)
    waker.handle_read()
    monkeypatch.undo()
    assert waker.awake and not pipe_has_a_byte(waker), "awake with an empty pipe: later wakes are skipped"


def test_drain_then_clear_never_leaves_awake_without_a_byte(monkeypatch, waker):
    woken = wake_during_drain(monkeypatch, waker)
    drain_then_clear(waker)
    monkeypatch.undo()
    assert woken and not waker.awake
    waker.wake()
    assert waker.awake and pipe_has_a_byte(waker), "the next wake() reaches the reactor's poll"


def test_new_reactors_get_the_draining_waker_and_the_clients_class_stays(monkeypatch):
    monkeypatch.setattr(reactor._WakeableLoop, "_waker_class", _PipedWaker)
    install_draining_waker()
    install_draining_waker()
    loop = reactor._WakeableLoop({})
    try:
        assert type(loop.waker).handle_read is drain_then_clear
        assert type(loop.waker).__bases__ == (_PipedWaker,)
        assert _PipedWaker.handle_read is not drain_then_clear
    finally:
        loop.waker.close()


def test_the_session_id_signer_signs_and_checks_as_flask_sessions_own():
    """Cookies signed before (or by a replica still on Flask-Session's signer) stay valid."""
    from flask import Flask
    from flask_session.base import ServerSideSessionInterface
    from webgatos.stores import SessionIdSigner

    app = Flask(__name__)
    app.secret_key = "unit-test-key"
    own = ServerSideSessionInterface._get_signer(None, app)
    ours = SessionIdSigner("unit-test-key")
    for sid in ("a", "x" * 43, "Zm9v-_bar"):
        assert ours.sign(sid) == own.sign(sid)
        assert ours.unsign(own.sign(sid)) == sid.encode()
    signed = own.sign("a")
    assert not ours.validate(signed[:-1] + (b"B" if signed.endswith(b"A") else b"A"))
    assert not SessionIdSigner("another-key").validate(own.sign("a"))


def test_sessions_keep_one_signer_per_secret():
    from flask import Flask
    from webgatos import Settings
    from webgatos.stores import make_session_interface

    app = Flask(__name__)
    app.secret_key = "one"
    interface = make_session_interface(app, Settings(secret_key="one"), on_store_error=lambda operation: None)
    signer = interface._get_signer(app)
    assert interface._get_signer(app) is signer
    app.secret_key = "two"
    assert interface._get_signer(app) is not signer and interface._get_signer(app).validate(
        interface._get_signer(app).sign("sid"))


def test_redis_replies_are_parsed_by_hiredis():
    from redis.connection import DefaultParser
    from redis.utils import HIREDIS_AVAILABLE

    assert HIREDIS_AVAILABLE and DefaultParser.__name__ == "_HiredisParser"


def test_wait_for_a_client_future_is_bounded_and_sees_its_result():
    pending = Future()
    started = time.monotonic()
    assert wait_for(pending, 0.05) is False
    assert 0.04 <= time.monotonic() - started < 2.0

    answered = Future()
    threading.Timer(0.05, answered.set_result, ("value",)).start()
    assert wait_for(answered, 5.0) is True and answered.result() == "value"

    failed = Future()
    threading.Timer(0.05, failed.set_exception, (RuntimeError("refused"),)).start()
    assert wait_for(failed, 5.0) is True and isinstance(failed.exception(), RuntimeError)

    assert wait_for(ImmediateFuture("now"), 0) is True
    assert wait_for(ImmediateExceptionFuture(RuntimeError("now")), 0) is True


def test_a_saved_session_gets_the_cookie_and_vary_of_flask_sessions_own_save():
    import re
    import warnings

    from cachelib import SimpleCache
    from flask_session.cachelib import CacheLibSessionInterface
    from webgatos import Settings, create_app

    def returning_visit(app):
        client = app.test_client()
        client.get("/api/session")
        response = client.get("/api/session")
        assert response.status_code == 200
        [cookie] = response.headers.getlist("Set-Cookie")
        assert client.get_cookie("webgatos_session").value in cookie
        shape = re.sub(r"=[^;]+; Expires=[^;]+;", "=<id>; Expires=<date>;", cookie)
        return shape, response.headers.getlist("Vary")

    ours = create_app(Settings(secret_key="k", replica_name="w"))
    stock = create_app(Settings(secret_key="k", replica_name="w"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        stock.session_interface = CacheLibSessionInterface(
            stock, client=SimpleCache(), key_prefix="session:", use_signer=True, permanent=True, sid_length=32,
            serialization_format="msgpack")
    assert returning_visit(ours) == returning_visit(stock)
    assert returning_visit(ours)[1] == ["Cookie"]


@pytest.mark.processes
@pytest.mark.parametrize("store, imports_redis", [("memory", False), ("redis", True)])
def test_redis_py_is_imported_only_for_the_redis_store(store, imports_redis):
    import subprocess
    import sys

    probe = ("import sys; from webgatos import Settings, create_app; "
             f"create_app(Settings(session_store={store!r}, secret_key='k')); print('redis' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == str(imports_redis)
