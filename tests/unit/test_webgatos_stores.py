"""The Hazelcast client's reactor waker, with a worker's `wake()` landing in the middle of the
reactor's `handle_read` (the interleaving that left requests waiting out the 10 ms poll)."""

import os

import pytest
from hazelcast import reactor
from hazelcast.reactor import _PipedWaker
from webgatos.stores import drain_then_clear, install_draining_waker


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
