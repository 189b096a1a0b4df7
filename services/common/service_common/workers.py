"""The gunicorn worker both services run: gunicorn's gthread worker, except that a connection gets
a thread only once the head of its request (request line and headers) has arrived.

gthread hands every new connection to a thread, which then blocks reading the head. Thirty clients
that send their headers a byte at a time (or send nothing) hold all the threads, and probes and
users wait behind them (issue 37: every /healthz timed out while they were held). Envoy buffers
heads, but without the mesh a Service sends clients straight to the Pod. Here the worker's main
loop reads heads itself, without blocking, for every connection at once:

- a head that is complete (a blank line after the headers) goes to a thread with its bytes, and
  the thread's parser starts from them instead of reading the socket: the per-request path is
  gthread's, with the first read moved from the thread to the loop;
- a head that has not arrived HEAD_TIMEOUT_SECONDS after the connection (or a kept-alive
  connection's next request) began is refused: 408 if any of it came, else just closed;
- a head longer than MAX_HEAD_BYTES is refused with a 431 (Envoy's own limit is 60 KiB);
- a stopping worker closes connections that have sent nothing yet at once.

Bodies are read by the thread, as in gthread: only the admin API reads one, and only with its
credential; gunicorn bounds the drain of an unread body by time. Plain HTTP/1.x only: with TLS
the loop could not read the head, so the worker behaves exactly as gthread.
"""

import contextlib
import errno
import selectors
import time
from collections import deque
from functools import partial

from gunicorn.workers import gthread

HEAD_END = b"\r\n\r\n"
MAX_HEAD_BYTES = 32 * 1024
HEAD_TIMEOUT_SECONDS = 10.0
RECV_BYTES = 64 * 1024


def _refusal(status: str, reason: str) -> bytes:
    body = f"{reason}\n".encode()
    return (f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


HEAD_TOO_LARGE = _refusal("431 Request Header Fields Too Large", f"Request head over {MAX_HEAD_BYTES} bytes.")
HEAD_TIMED_OUT = _refusal("408 Request Timeout", f"Request head not complete within {HEAD_TIMEOUT_SECONDS:g}s.")


def head_complete(data: bytes, scanned: int = 0) -> bool:
    """Whether `data` holds a whole request head. `scanned`: bytes already known to hold no end of
    head, so a head sent a byte at a time is scanned once, not once per byte. Empty lines before
    the request line are skipped, as the parser does: they would look like a head's end."""
    lead = len(data) - len(data.lstrip(b"\r\n"))
    return data.find(HEAD_END, max(lead, scanned - 3)) >= 0


class HeadFirstThreadWorker(gthread.ThreadWorker):
    """gthread, with request heads read by the main loop (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # (deadline, connection) in deadline order: every deadline is now + the same timeout.
        self.reading_heads: deque = deque()

    # A connection's state while its head arrives: `head` (bytes so far, None when no head is
    # being read) and `head_deadline` (the entry in reading_heads that is current).

    def accept(self, listener):
        if self.cfg.is_ssl:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = gthread.TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        conn.head, conn.head_deadline = b"", None
        self.read_head(conn, registered=False)

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request: its head is read here too."""
        if self.cfg.is_ssl:
            return super().on_client_socket_readable(conn, client)
        self.keepalived_conns.remove(conn)
        conn.head_deadline = None
        if getattr(conn, "head", None) is None:
            conn.head = b""
        self.read_head(conn, registered=True)

    def read_head(self, conn, registered: bool) -> None:
        """Read what the socket holds; hand a complete head to a thread, or wait for more."""
        scanned = len(conn.head)
        received = self._receive(conn)
        if received == "closed":
            self.refuse(conn, b"", registered)
        elif received == "more" and head_complete(conn.head, scanned):
            if registered:
                self.poller.unregister(conn.sock)
            conn.head_deadline = None
            self.enqueue_req(conn)
        elif len(conn.head) > MAX_HEAD_BYTES:
            self.refuse(conn, HEAD_TOO_LARGE, registered)
        elif not registered or conn.head_deadline is None:  # else: the same head, the same deadline
            conn.head_deadline = deadline = time.monotonic() + HEAD_TIMEOUT_SECONDS
            self.reading_heads.append((deadline, conn))
            callback = partial(self.on_head_readable, conn)
            if registered:
                self.poller.modify(conn.sock, selectors.EVENT_READ, callback)
            else:
                self.poller.register(conn.sock, selectors.EVENT_READ, callback)

    def on_head_readable(self, conn, client):
        self.read_head(conn, registered=True)

    @staticmethod
    def _receive(conn) -> str:
        """'more' (bytes added to conn.head), 'wait' (none yet) or 'closed' (the client left or reset)."""
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return "wait"
        except OSError:
            return "closed"
        if not data:
            return "closed"
        conn.head += data
        return "more"

    def refuse(self, conn, answer: bytes, registered: bool) -> None:
        """Close a connection whose head never came whole, with `answer` if it can be sent now."""
        conn.head = conn.head_deadline = None
        if registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.poller.unregister(conn.sock)
        if answer:
            with contextlib.suppress(OSError):
                conn.sock.send(answer)  # a few hundred bytes into an empty send buffer: one call
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """gthread's expiry of deferred connections, plus heads past their deadline; a stopping
        worker does not wait for clients that have sent nothing."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading_heads and self.reading_heads[0][0] <= now:
            deadline, conn = self.reading_heads.popleft()
            if conn.head_deadline == deadline:  # else: handed on or closed since
                self.refuse(conn, HEAD_TIMED_OUT if conn.head else b"", registered=True)
        if not self.alive:
            for deadline, conn in list(self.reading_heads):
                if conn.head_deadline == deadline and not conn.head:
                    self.refuse(conn, b"", registered=True)  # its entry goes stale, and leaves at its deadline

    def handle(self, conn):
        """In the thread: the parser starts from the head the loop read."""
        head = getattr(conn, "head", None)
        if head is not None:
            conn.head = None
            conn.data_ready = True  # gthread's wait for the first bytes is over
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(head)
        return super().handle(conn)

    def finish_request(self, conn, fs):
        """A kept-alive connection whose client sent part of its next request along with the last
        one: those bytes wait in the loop for the rest of the head, not in a thread."""
        if (not self.cfg.is_ssl and not fs.cancelled() and fs.exception() is None and fs.result() is True
                and conn.parser is not None):
            pending = conn.parser.unreader.buf.getvalue()
            if pending and not head_complete(pending):
                conn.head = conn.parser.unreader.take_buffered()
        super().finish_request(conn, fs)
