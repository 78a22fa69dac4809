"""The client side of the proxy: parse and police requests, queue them in order, hand them to exchanges."""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import TYPE_CHECKING, Any, Final

import httptools

from sprout.router import wire
from sprout.router.exchange import CRLF, Exchange
from sprout.router.request import REASONS, Reject, RequestHead

if TYPE_CHECKING:
    from sprout.router.router import Router

_UNSEEN: Final[Any] = object()
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
# The request head is joined from its pieces in one pass (a `%` template with the headers joined first
# cost ~600 instructions a request more). The forwarding headers up to X-Forwarded-Host's value are per
# connection (`forwarding_prefix`); a client's own never reach it unless it is a trusted proxy.
_HTTP11: Final = b" HTTP/1.1\r\n"
_REQUEST_ID: Final = b"\r\nX-Request-Id: "


class ClientProtocol(RequestHead, asyncio.Protocol):
    """One client connection: keep-alive, pipelining in order, limits, timeouts and WebSocket tunnels."""

    __slots__ = (
        "closed",
        "exchange",
        "forwarding_prefix",
        "head_raw",
        "head_started",
        "http11",
        "idle_since",
        "in_head",
        "last",
        "parser",
        "parsing",
        "paused_pipeline",
        "paused_upstream",
        "peer",
        "queue",
        "router",
        "to_start",
        "transport",
        "tunnel",
        "upgrading",
    )

    #: Whether the connection came through the HTTPS listener (class-level: no per-connection cost).
    secure = False
    scheme = b"http"

    def __init__(self, router: Router) -> None:
        super().__init__(router.config.max_request_line, router.config.max_header_bytes)
        self.router = router
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = b""
        self.exchange: Exchange | None = None
        self.queue: deque[Exchange] = deque()
        self.parsing: Exchange | None = None
        self.to_start: Exchange | None = None
        self.last: Exchange | None = None
        self.tunnel: Exchange | None = None
        self.upgrading = False
        self.in_head = True
        self.head_raw = 0
        self.head_started = router.clock
        self.idle_since = 0.0
        self.closed = False
        self.http11 = True
        self.paused_upstream = False
        self.paused_pipeline = False

    # -- asyncio protocol -----------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        router = self.router
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]).encode() if isinstance(peer, tuple) else b"unix"
        self.forwarding_prefix = wire.forwarding_prefix(self.peer, self.peer, self.scheme, b"")
        if router.trusted_networks and isinstance(peer, tuple):
            self.trusted = router.is_trusted(str(peer[0]))
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if len(router.clients) >= router.config.max_connections:
            self.closed = True
            self.write_direct(wire.local_response(503, "too many connections", b"", True))
            return
        router.clients.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.router.clients.discard(self)
        self.queue.clear()
        ex = self.exchange
        if ex is not None:
            ex.client_gone()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self.tunnel is not None:
            self.tunnel.tunnel_to_upstream(data)
            return
        if self.upgrading:
            last = self.last
            if last is not None:
                last.tunnel_to_upstream(data)
            return
        if self.in_head:
            if not self.head_started:
                self.head_started = self.router.clock
            self.head_raw += len(data)
        self.idle_since = 0.0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgrade_requested(data[exc.args[0] :])
        except (httptools.HttpParserError, Reject) as exc:
            status = self.reject or 400
            self.fail(status, REASONS.get(status, "bad request") if status != 400 else _reason(exc))
            return
        ex = self.to_start
        if ex is not None:
            self.to_start = None
            if not ex.done:
                if ex.local is None:
                    ex.send()
                else:
                    ex.answer_locally()
        else:
            ex = self.exchange
            if ex is not None and not ex.done:
                ex.flush_request()
        if self.in_head and self.head_raw > self.max_header_bytes + self.max_request_line:
            self.fail(431, REASONS[431])

    def pause_writing(self) -> None:
        ex = self.exchange
        if ex is not None and ex.conn is not None:
            ex.conn.pause()

    def resume_writing(self) -> None:
        ex = self.exchange
        if ex is not None and ex.conn is not None:
            ex.conn.resume()

    # -- httptools callbacks --------------------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self.in_head = False
        self.head_raw = 0
        self.head_started = 0.0
        router = self.router
        parser = self.parser
        method: bytes = parser.get_method()
        keep_alive = parser.should_keep_alive()
        # Only HTTP/1.1 keeps a connection open without a Connection header: skip get_http_version(),
        # which formats a new string on every call (0.6 µs, the dearest parser call of a request).
        if keep_alive and not self.connection:
            self.http11 = True
        else:
            version = parser.get_http_version()
            if version != "1.1" and version != "1.0":
                # HTTP/0.9, 2.0 and 3.0 reach here (llhttp refuses other versions): not spoken on this port.
                self.reject = 505
                raise Reject(f"HTTP/{version} is not supported")
            self.http11 = version == "1.1"
            if not self.http11 and self.transfer_encoding:
                # RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
                self.reject = 400
                raise Reject("Transfer-Encoding in an HTTP/1.0 request")
        # Not "/…" (origin-form), OPTIONS's "*" or CONNECT's authority (refused below).
        if self.url[0] != 47 and self.url != b"*" and method != b"CONNECT":
            self.use_absolute_form()
        host = self.host
        if not host and self.http11:
            self.reject = 400
            raise Reject("missing Host header")
        route = router.host_routes.get(host, _UNSEEN)
        if route is _UNSEEN:
            # Checked once per distinct value: a valid one is then remembered with its route.
            if host and not wire.valid_host(host):
                self.reject = 400
                raise Reject("invalid Host header")
            route = router.route_for(host)
        rid = self.request_id or router.request_id()
        headers = self.headers
        upgrade = False
        if self.connection:
            tokens = wire.connection_tokens(self.connection)
            upgrade = bool(self.upgrade) and b"upgrade" in tokens
            named = tokens - wire.CONNECTION_KEEPS
            if named:
                headers = wire.without_named(headers, named)
        body_mode = 2 if self.transfer_encoding else (1 if self.content_length not in (b"", b"0") else 0)
        url = self.url
        ex = Exchange(self, route, method, url, host, rid, body_mode, keep_alive)
        self.last = ex
        tls = router.tls
        local = (
            tls.plain_answer(host, url, rid, not keep_alive) if tls is not None and not self.secure else None
        )
        if local is not None:
            ex.local = local
        elif route is None:
            ex.local = (404, wire.local_response(404, "no route for this host", rid, not keep_alive))
        elif body_mode == 1 and int(self.content_length) > route.max_body:
            ex.close_after = True
            ex.local = (413, wire.local_response(413, REASONS[413], rid, True))
        elif method == b"CONNECT":
            ex.local = (405, wire.local_response(405, "CONNECT is not supported", rid, not keep_alive))
        else:
            cache = route.cache
            if cache is not None and method == b"GET":
                key = (host.lower(), url, self.accept_encoding)
                entry = cache.get(key, router.clock)
                if entry is not None:
                    ex.local = (entry.status, entry.response(rid, keep_alive))
                else:
                    ex.cache_key = key
            if ex.local is None:
                if self.trusted:
                    prefix, fhost = wire.trusted_forwarding(
                        self.forwarded_for, self.forwarding, self.peer, host
                    )
                else:
                    prefix, fhost = self.forwarding_prefix, host
                if body_mode == 1:
                    framing = b"Content-Length: %s\r\n" % self.content_length
                elif body_mode == 2:
                    framing = b"Transfer-Encoding: chunked\r\n"
                else:
                    framing = b""
                if upgrade:
                    ex.upgrade = True
                    framing += b"Connection: upgrade\r\nUpgrade: %s\r\n" % self.upgrade
                # End-to-end headers, the forwarding headers, then the framing lines.
                ex.head = b"".join([method, b" ", url, _HTTP11, *headers, prefix, fhost, _REQUEST_ID, rid, CRLF,
                                    framing, CRLF])  # fmt: skip
                if self.expect and self.exchange is None and body_mode:
                    self.write(_CONTINUE)
        self._reset_request()
        self.parsing = ex
        if self.exchange is None:
            self.exchange = ex
            self.to_start = ex
        else:
            self.queue.append(ex)
            if not self.paused_pipeline:
                self.paused_pipeline = True
                self._pause()

    def on_body(self, body: bytes) -> None:
        ex = self.parsing
        if ex is None:
            return
        self.body_size += len(body)
        route = ex.route
        if route is not None and self.body_size > route.max_body:
            self.reject = 413
            raise Reject()
        ex.request_body(body)

    def on_message_complete(self) -> None:
        ex = self.parsing
        self.parsing = None
        self.in_head = True
        if ex is not None:
            if ex.body_mode or ex.conn is not None:
                ex.request_complete()
            else:
                # A request without a body that is not sent yet: being complete is all there is to note.
                ex.request_done = True

    # -- helpers used by exchanges and the router -----------------------------------------------------
    def write(self, data: bytes) -> None:
        """Send bytes to the client unless the connection is gone."""
        if not self.closed:
            assert self.transport is not None
            self.transport.write(data)

    def write_direct(self, data: bytes) -> None:
        """Send a last response and close, bypassing the request bookkeeping."""
        if self.transport is not None:
            self.transport.write(data)
            self.transport.close()

    def close(self) -> None:
        """Close after the buffered bytes are sent."""
        if not self.closed:
            self.closed = True
            self.router.clients.discard(self)
            assert self.transport is not None
            self.transport.close()

    def fail(self, status: int, reason: str) -> None:
        """Refuse what the client sent with `status` and close the connection."""
        if self.closed:
            return
        ex = self.exchange
        if ex is not None and not ex.done:
            if ex is self.parsing and not ex.resp_status:
                ex.close_after = True
                if ex is self.to_start:
                    self.to_start = None
                ex.cut(status, reason)
            self.close()
            return
        self.write(wire.local_response(status, reason, b"", True))
        self.close()

    def exchange_done(self, ex: Exchange) -> None:
        """The active exchange ended: start the next pipelined one or wait for the next request."""
        if ex is not self.exchange:
            return
        self.exchange = None
        if self.closed:
            return
        if ex.close_after or self.upgrading:
            self.close()
            return
        if self.queue:
            nxt = self.queue.popleft()
            self.exchange = nxt
            self.router.loop.call_soon(self._start_queued, nxt)
            if not self.queue and self.paused_pipeline:
                self.paused_pipeline = False
                self._resume()
        else:
            self.idle_since = self.router.clock

    def _start_queued(self, ex: Exchange) -> None:
        if not ex.done and not self.closed:
            if ex.local is None:
                ex.send()
            else:
                ex.answer_locally()
            if not ex.done and ex.request_done is False:
                ex.flush_request()

    def _upgrade_requested(self, rest: bytes) -> None:
        ex = self.last
        if ex is not None and ex.local is not None:
            # Answered by the router itself (404, 405 for CONNECT, a cache hit): no tunnel, then close.
            ex.close_after = True
            return
        if ex is None or not ex.upgrade or ex.done:
            self.fail(400, "unexpected protocol upgrade")
            return
        self.upgrading = True
        ex.tunnel_pending = rest
        # Nothing more is read until the upstream accepts the upgrade, so early bytes stay bounded.
        self._pause()

    def start_tunnel(self, ex: Exchange) -> None:
        """The upstream accepted the upgrade: relay raw bytes from now on."""
        self.tunnel = ex
        self.upgrading = False
        self._resume()

    def pause_for_upstream(self) -> None:
        """Stop reading the client until the upstream side can take more."""
        if not self.paused_upstream:
            self.paused_upstream = True
            self._pause()

    def resume_for_upstream(self) -> None:
        """Read the client again."""
        if self.paused_upstream:
            self.paused_upstream = False
            if not self.paused_pipeline:
                self._resume()

    def _pause(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def _resume(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def check_timeouts(self, now: float) -> None:
        """Enforce the header, idle and upstream response timeouts (called by the router's sweep)."""
        if self.closed:
            return
        ex = self.exchange
        config = self.router.config
        if ex is not None and ex.deadline and now > ex.deadline:
            ex.cut(504, "upstream response timeout")
        elif (
            self.in_head
            and self.head_started
            and ex is None
            and now - self.head_started > config.header_timeout
        ):
            self.fail(408, REASONS[408])
        elif self.idle_since and ex is None and now - self.idle_since > config.idle_timeout:
            self.close()

    def shutdown_idle(self) -> None:
        """Close the connection if no request is in progress (graceful shutdown)."""
        if (
            self.exchange is None
            and not self.queue
            and not (self.in_head and self.head_started and self.head_raw)
        ):
            self.close()


class TlsClientProtocol(ClientProtocol):
    """A client connection of the HTTPS listener: the same proxy, marked secure (X-Forwarded-Proto, HSTS)."""

    __slots__ = ()
    secure = True
    scheme = b"https"


def _reason(exc: BaseException) -> str:
    text = str(exc.args[0]) if exc.args else ""
    return text if text and len(text) < 100 else "bad request"
