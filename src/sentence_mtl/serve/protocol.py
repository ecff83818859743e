"""Running the app under uvicorn with bounded connections.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and the size of an incomplete
request head (``h11_max_incomplete_event_size``), but has no timeout for the request line and
headers: a client that sends half a header holds its connection forever.
:class:`HeaderTimeoutH11Protocol` closes such a connection after ``header_timeout`` seconds with
a 408, and also closes one whose client is still sending a body the app has already refused.
An answer whose client does not read it (the socket's buffers full, writing paused) for
``send_timeout`` seconds is given up: the connection is aborted, which frees the request's slot.
A request uvicorn cannot parse (a malformed request line, a bad Content-Length, a head over
:data:`MAX_HEAD_BYTES`) gets a JSON 400 like every other answer, not uvicorn's plain text.
On SIGTERM, requests in flight get ``shutdown_timeout`` seconds; then their connections are
aborted (an unread answer is dropped; a computation already running finishes, bounded by the
request limits, and answers no one). Ten seconds later uvicorn's ``timeout_graceful_shutdown``
cancels whatever still runs, so the process always exits.

uvicorn's own ``limit_concurrency`` counts open connections and running requests together, so a
hundred half-open sockets would turn every request away (with a plain-text 503) until the header
timeout dropped them. Here the two are apart: the protocol caps open connections
(``max_connections``: a connection over it gets a JSON 503 and is closed), and the app caps
requests being handled (``max_concurrency``, :class:`~.body.BodyGuard`).
"""

from __future__ import annotations

import asyncio
import json

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import ServiceLimits

MAX_HEAD_BYTES = 16 * 1024  # request line + headers; h11's default, stated here


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps({"error": f"The request line and headers were not complete within {seconds:g} s; "
                                "the connection was closed.", "detail": {"header_timeout": seconds}}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)) + body


def _bad_request_response() -> bytes:
    body = json.dumps({"error": "The request could not be parsed as HTTP/1.1 (a malformed request line, an "
                                "invalid, negative or repeated Content-Length, or a request head over "
                                f"{MAX_HEAD_BYTES} bytes); send a well-formed request.",
                       "detail": {"max_head_bytes": MAX_HEAD_BYTES}}).encode()
    return (b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)) + body


def _too_many_connections_response(limit: int) -> bytes:
    body = json.dumps({"error": f"The server has {limit} connections open, its limit; retry in a moment.",
                       "detail": {"max_connections": limit}}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)) + body


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's head and a cap on open
    connections (see module docstring)."""

    header_timeout: float = 10.0
    send_timeout: float = 30.0
    shutdown_timeout: float = 30.0
    max_connections: int = 1000

    def connection_made(self, transport) -> None:
        self._head_timer: asyncio.TimerHandle | None = None
        self._drain_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._shutdown_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self.logger.warning("%d connections open, over the limit of %d; refusing one.", len(self.connections),
                                self.max_connections)
            transport.write(_too_many_connections_response(self.max_connections))
            transport.close()
            return
        self._watch_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch_head()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing() and self._drain_timer is None:
            # the app answered without reading the whole body (e.g. 413): give the client a
            # moment to finish, then close rather than read a body that never ends
            self._drain_timer = self.loop.call_later(self.header_timeout, self._close_if_still_sending)

    def connection_lost(self, exc) -> None:
        for timer in (self._head_timer, self._drain_timer, self._send_timer, self._shutdown_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._drain_timer = self._send_timer = self._shutdown_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """SIGTERM: uvicorn closes idle connections and lets busy ones finish; a busy one gets
        ``shutdown_timeout`` seconds."""
        super().shutdown()  # a closed connection may still hold an answer its client does not read
        if self._shutdown_timer is None:
            self._shutdown_timer = self.loop.call_later(self.shutdown_timeout, self._abort_on_shutdown)

    def _abort_on_shutdown(self) -> None:
        """Still connected (connection_lost cancels this timer): drop it, unsent bytes and all."""
        self._shutdown_timer = None
        self.logger.warning("Connection still open %g s after shutdown began; closing it.", self.shutdown_timeout)
        self.transport.abort()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request it cannot parse, as JSON (its own is text/plain)."""
        self.transport.write(_bad_request_response())
        self.transport.close()

    def pause_writing(self) -> None:
        """The client is not reading fast enough: it has ``send_timeout`` seconds to catch up."""
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.send_timeout, self._abort_if_still_paused)

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None

    def _abort_if_still_paused(self) -> None:
        self._send_timer = None
        if self.flow.write_paused:  # closing or not: close() would wait for the unread bytes
            self.logger.warning("Answer not read by the client within %g s; closing the connection.",
                                self.send_timeout)
            self.transport.abort()  # close() would wait for the unread buffer to drain

    def _watch_head(self) -> None:
        """Arm the timer while a request head is awaited; disarm it once the head is complete
        (the app reads the body under its own deadline)."""
        state = self.conn.their_state
        if state is h11.IDLE and self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.header_timeout, self._close_if_head_incomplete)
        elif state is not h11.IDLE and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if state is not h11.SEND_BODY and self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None

    def _close_if_head_incomplete(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.warning("Request head not complete within %g s; closing the connection.", self.header_timeout)
            self.transport.write(_timeout_response(self.header_timeout))
            self.transport.close()

    def _close_if_still_sending(self) -> None:
        self._drain_timer = None
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()


def protocol_class(limits: ServiceLimits) -> type[HeaderTimeoutH11Protocol]:
    """The protocol class with ``limits.header_timeout`` (uvicorn instantiates it per connection)."""
    return type("HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,),
                {"header_timeout": float(limits.header_timeout), "send_timeout": float(limits.send_timeout),
                 "shutdown_timeout": float(limits.shutdown_timeout),
                 "max_connections": limits.max_connections})


def uvicorn_config(app, host: str, port: int, limits: ServiceLimits, **kwargs) -> uvicorn.Config:
    """The uvicorn settings that bound connections: their number, keep-alive, head size and time,
    and the shutdown (``limit_concurrency`` stays off: see the module docstring)."""
    return uvicorn.Config(app, host=host, port=port, http=protocol_class(limits),
                          limit_concurrency=None, timeout_keep_alive=limits.keep_alive_timeout,
                          timeout_graceful_shutdown=limits.shutdown_timeout + 10,
                          h11_max_incomplete_event_size=MAX_HEAD_BYTES, **kwargs)


def run(app, host: str, port: int, limits: ServiceLimits, log_level: str = "info") -> bool:
    """Serve ``app`` until interrupted (what ``sentence-mtl serve`` calls). False if the server
    never started (uvicorn has logged why: the port is taken, or the host is not this machine's)."""
    server = uvicorn.Server(uvicorn_config(app, host, port, limits, log_level=log_level))
    try:
        server.run()
    except SystemExit:  # uvicorn exits the process when it cannot bind; the caller says why instead
        return False
    return server.started
