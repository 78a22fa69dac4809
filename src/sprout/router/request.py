"""Reading one request head: collect what the proxy needs from httptools callbacks and enforce limits."""

from __future__ import annotations

from typing import Final

from sprout.router import wire

REASONS: Final = {
    400: "bad request",
    408: "request header timeout",
    413: "request body too large",
    414: "request line too long",
    431: "request header fields too large",
    501: "transfer coding not implemented",
    505: "HTTP version not supported",
}
_CLASS_OF: Final = wire.CLASS_OF
_FORWARDING_CLASSES: Final = wire.FORWARDING_CLASSES


class Reject(Exception):
    """Raised inside a parser callback to stop parsing; the status is kept in `RequestHead.reject`."""


class RequestHead:
    """httptools `on_url`/`on_header` callbacks: the request target, end-to-end headers and framing facts."""

    __slots__ = (
        "accept_encoding",
        "body_size",
        "connection",
        "content_length",
        "expect",
        "forwarded_for",
        "forwarding",
        "header_bytes",
        "headers",
        "host",
        "max_header_bytes",
        "max_request_line",
        "reject",
        "request_id",
        "transfer_encoding",
        "trusted",
        "upgrade",
        "url",
    )

    def __init__(self, max_request_line: int, max_header_bytes: int) -> None:
        self.max_request_line = max_request_line
        self.max_header_bytes = max_header_bytes
        self.reject = 0
        # Whether the peer is a trusted proxy (set per connection): only then are its forwarding headers kept.
        self.trusted = False
        self._reset_request()

    def _reset_request(self) -> None:
        self.url = b""
        # End-to-end header lines as pieces, four per header: name, b": ", value, CRLF (no formatting).
        self.headers: list[bytes] = []
        self.header_bytes = 0
        self.host = b""
        self.content_length = b""
        self.transfer_encoding = False
        self.connection: list[bytes] = []
        self.upgrade = b""
        self.forwarded_for = b""
        # (class, name, value) of the forwarding headers a trusted proxy sent; None when there are none.
        self.forwarding: list[tuple[int, bytes, bytes]] | None = None
        self.request_id = b""
        self.expect = False
        self.accept_encoding = b""
        self.body_size = 0

    def use_absolute_form(self) -> None:
        """Take an absolute-form target's authority as the Host, and forward its origin form (RFC 9112
        §3.2.2: a Host header beside it is ignored); 400 when the target is not an http(s) URI."""
        parsed = wire.absolute_form(self.url)
        if parsed is None:
            self.reject = 400
            raise Reject("request target is neither a path nor an absolute http(s) URI")
        self.url, authority = parsed
        for at in range(0, len(self.headers), 4):
            if self.headers[at].lower() == b"host":
                self.headers[at + 2] = authority
                break
        else:
            wire.add_header(self.headers, b"Host", authority)
        self.host = authority

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.max_request_line:
            self.reject = 414
            raise Reject()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.max_header_bytes:
            self.reject = 431
            raise Reject()
        cls = _CLASS_OF.get(name)
        if cls is None:
            cls = wire.header_class(name)
        if cls == wire.KEEP:
            wire.add_header(self.headers, name, value)
        elif cls == wire.HOST:
            if self.host:
                self.reject = 400
                raise Reject("duplicate Host header")
            # `find`, not `in`: `bytes in bytes` raises and clears a TypeError inside CPython first.
            if value.find(b",") >= 0:
                self.reject = 400
                raise Reject("Host header with more than one value")
            self.host = value
            wire.add_header(self.headers, name, value)
        elif cls == wire.CONTENT_LENGTH:
            self.content_length = value
        elif cls == wire.TRANSFER_ENCODING:
            # Only a lone `chunked` is accepted: anything else is how request smuggling starts.
            if self.transfer_encoding:
                self.reject = 400
                raise Reject("repeated Transfer-Encoding")
            if value.strip(b" \t").lower() != b"chunked":
                self.reject = 501
                raise Reject()
            self.transfer_encoding = True
        elif cls == wire.CONNECTION:
            self.connection.append(value)
        elif cls == wire.UPGRADE:
            self.upgrade = value
        elif cls == wire.FORWARDED_FOR:
            if self.trusted:
                self.forwarded_for = self.forwarded_for + b", " + value if self.forwarded_for else value
        elif cls == wire.REQUEST_ID:
            if len(value) <= 128 and value.isascii() and value.find(b" ") < 0:
                self.request_id = value
        elif cls == wire.EXPECT:
            self.expect = value.strip().lower() == b"100-continue"
        elif cls == wire.ACCEPT_ENCODING:
            self.accept_encoding = value
            wire.add_header(self.headers, name, value)
        elif cls == wire.UNDERSCORE_FRAMING:
            self.reject = 400
            raise Reject("framing header with an underscore in its name")
        elif cls in _FORWARDING_CLASSES:
            if self.trusted:
                if self.forwarding is None:
                    self.forwarding = []
                self.forwarding.append((cls, name, value))
        elif cls != wire.DROP:
            wire.add_header(self.headers, name, value)
