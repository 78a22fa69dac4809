"""Connections to one target: an HTTP/1.1 response reader per connection and a keep-alive pool."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Final

import httptools

from sprout.router import wire

if TYPE_CHECKING:
    from sprout.router.exchange import Exchange
    from sprout.router.target import Target


_CLASS_OF: Final = wire.CLASS_OF
_KEEP: Final = wire.KEEP
_KEPT_IN_RESPONSE: Final = wire.KEPT_IN_RESPONSE


class UpstreamConnection(asyncio.Protocol):
    """One keep-alive connection to a target; relays the response of the exchange it is lent to."""

    __slots__ = (
        "closed",
        "exchange",
        "idle_since",
        "lines",
        "parser",
        "paused",
        "pool",
        "sock",
        "special",
        "transport",
        "tunnel",
    )

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        # The response head as it is parsed: lines[0] is kept for the status line, then the end-to-end
        # headers as pieces (name, b": ", value, CRLF); `special` holds every header that is not a plain
        # end-to-end one.
        self.lines: list[bytes] = [b""]
        self.special: list[tuple[bytes, bytes]] = []
        self.idle_since = 0.0
        self.closed = False
        self.tunnel = False
        self.paused = False
        self.sock: socket.socket | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = sock

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            # Bytes on an idle connection belong to no request: the connection cannot be trusted.
            self.close()
            return
        if self.tunnel:
            ex.tunnel_to_client(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            ex.upstream_upgraded(data[exc.args[0] :])
            return
        except httptools.HttpParserError as exc:
            ex.upstream_failed(f"invalid response from {self.pool.target.address}: {exc}", protocol=True)
            return
        ex = self.exchange
        if ex is None:
            return
        if self.sock is not None:
            # Mid-response, ACK at once: an upstream that writes head and body apart (uvicorn,
            # http.server) holds the body under Nagle until the head is ACKed, a 40 ms delayed ACK.
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        if not ex.resp_hold:
            ex.flush_response()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        ex = self.exchange
        if ex is not None:
            self.exchange = None
            ex.upstream_lost(self, exc)
        self.pool.forget(self)

    def pause_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.pause_client_reading()

    def resume_writing(self) -> None:
        if self.exchange is not None:
            self.exchange.resume_client_reading()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        # Classified as it arrives, so the head is built without a second pass over the headers.
        cls = _CLASS_OF.get(name)
        if cls is None:
            cls = wire.header_class(name)
        if cls == _KEEP:
            wire.add_header(self.lines, name, value)
            return
        if cls in _KEPT_IN_RESPONSE:
            wire.add_header(self.lines, name, value)
        self.special.append((name, value))

    def on_headers_complete(self) -> None:
        ex = self.exchange
        lines = self.lines
        special = self.special
        self.lines = [b""]
        self.special = []
        if ex is not None:
            parser = self.parser
            ex.response_head(parser.get_status_code(), lines, special, parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is not None:
            ex.response_body(body)

    def on_message_complete(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.response_complete(self.parser.should_keep_alive())

    def pause(self) -> None:
        """Stop reading the upstream (the client cannot take more yet)."""
        if not self.paused and self.transport is not None and not self.closed:
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Read the upstream again."""
        if self.paused and self.transport is not None and not self.closed:
            self.paused = False
            self.transport.resume_reading()

    def reset_parser(self) -> None:
        """Start a fresh response parser (after a HEAD response whose body the parser would wait for)."""
        self.parser = httptools.HttpResponseParser(self)
        self.lines = [b""]
        self.special = []

    def close(self) -> None:
        """Close the socket; the pool forgets it in connection_lost."""
        self.closed = True
        self.exchange = None
        if self.transport is not None:
            self.transport.close()


class Pool:
    """Idle keep-alive connections of one target, newest first, with an idle timeout and a cap."""

    __slots__ = ("_all", "closing", "connect_timeout", "idle", "idle_timeout", "loop", "max_idle", "target")

    def __init__(
        self,
        target: Target,
        loop: asyncio.AbstractEventLoop,
        connect_timeout: float,
        idle_timeout: float,
        max_idle: int,
    ) -> None:
        self.target = target
        self.loop = loop
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout
        self.max_idle = max_idle
        self.idle: list[UpstreamConnection] = []
        self._all: set[UpstreamConnection] = set()
        self.closing = False

    def acquire(self) -> UpstreamConnection | None:
        """An idle connection that is still fresh, or None."""
        idle = self.idle
        if not idle:
            return None
        now = self.loop.time()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.idle_timeout:
                return conn
            conn.close()
        return None

    def release(self, conn: UpstreamConnection) -> None:
        """Take back a connection whose response ended cleanly with keep-alive."""
        conn.exchange = None
        if conn.closed or self.closing or len(self.idle) >= self.max_idle:
            conn.close()
            return
        if conn.paused:
            conn.resume()
        conn.idle_since = self.loop.time()
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        """Drop a closed connection from the books."""
        self._all.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)

    async def connect(self) -> UpstreamConnection:
        """Open a new connection; raises OSError or TimeoutError on failure."""
        async with asyncio.timeout(self.connect_timeout):
            _, proto = await self.loop.create_connection(
                lambda: UpstreamConnection(self), self.target.host, self.target.port
            )
        if self.closing:
            proto.close()
            raise ConnectionAbortedError(f"target {self.target.id} is draining")
        self._all.add(proto)
        return proto

    def close_idle(self) -> None:
        """Close connections idle past the timeout (called by the router's periodic sweep)."""
        now = self.loop.time()
        keep = []
        for conn in self.idle:
            if now - conn.idle_since < self.idle_timeout and not conn.closed:
                keep.append(conn)
            else:
                conn.close()
        self.idle = keep

    def close_all(self) -> None:
        """Close every connection and refuse to pool again (the target drained)."""
        self.closing = True
        for conn in list(self._all):
            conn.close()
        self.idle.clear()
