"""HTTP/1.1 wire details shared by the proxy: header classes, status lines and local responses."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

# Header classes, looked up by the exact bytes of a header name (cached) to keep .lower() off the hot path.
KEEP: Final = 0
DROP: Final = 1  # hop-by-hop (RFC 9110 §7.6.1) or set by the router itself
CONTENT_LENGTH: Final = 2
TRANSFER_ENCODING: Final = 3
HOST: Final = 4
CONNECTION: Final = 5
UPGRADE: Final = 6
FORWARDED_FOR: Final = 7
REQUEST_ID: Final = 8
EXPECT: Final = 9
SET_COOKIE: Final = 10
CACHE_CONTROL: Final = 11
VARY: Final = 12
ACCEPT_ENCODING: Final = 13
# Forwarding headers from the client: believed only from a trusted proxy, else replaced or dropped.
FORWARDED_PROTO: Final = 14
FORWARDED_HOST: Final = 15
REAL_IP: Final = 16
FORWARDING: Final = 17  # Forwarded, X-Forwarded-Port/-Prefix/…: passed on from a trusted proxy only
# Content_Length, Transfer_Encoding: refused, servers differ on whether they frame.
UNDERSCORE_FRAMING: Final = 18
FORWARDING_CLASSES: Final[frozenset[int]] = frozenset({FORWARDED_PROTO, FORWARDED_HOST, REAL_IP, FORWARDING})

_BY_LOWER: Final[dict[bytes, int]] = {
    b"connection": CONNECTION,
    b"proxy-connection": DROP,
    b"keep-alive": DROP,
    b"te": DROP,
    b"trailer": DROP,
    b"transfer-encoding": TRANSFER_ENCODING,
    b"upgrade": UPGRADE,
    b"content-length": CONTENT_LENGTH,
    b"host": HOST,
    b"x-forwarded-for": FORWARDED_FOR,
    b"x-forwarded-proto": FORWARDED_PROTO,
    b"x-forwarded-host": FORWARDED_HOST,
    b"x-real-ip": REAL_IP,
    b"forwarded": FORWARDING,
    b"x-request-id": REQUEST_ID,
    b"x-cache": DROP,
    b"expect": EXPECT,
    b"set-cookie": SET_COOKIE,
    b"cache-control": CACHE_CONTROL,
    b"vary": VARY,
    b"accept-encoding": ACCEPT_ENCODING,
}
#: The class of each exact header name seen, for hot loops: `CLASS_OF.get(name)` is None until
#: `header_class(name)` ran once.
CLASS_OF: Final[dict[bytes, int]] = {}
_CLASS_OF_MAX: Final = 4096


#: A Host value (RFC 9110 §7.2, RFC 3986 §3.2.2): an IP literal or a reg-name, then digits after a colon.
_HOST_VALUE: Final = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+;=]+)(?::[0-9]*)?")


def valid_host(value: bytes) -> bool:
    """Whether a Host header value is a host and an optional port (RFC 9112 §3.2 answers others 400)."""
    return _HOST_VALUE.fullmatch(value) is not None


def absolute_form(target: bytes) -> tuple[bytes, bytes] | None:
    """The origin-form target and the authority of an absolute-form `http(s)://…` request target
    (RFC 9112 §3.2.2); None when it is not one, or its authority is not a valid host."""
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return None
    end = len(rest)
    for mark in (b"/", b"?"):
        at = rest.find(mark)
        if 0 <= at < end:
            end = at
    authority, path = rest[:end], rest[end:]
    if not valid_host(authority):
        return None
    return (path if path.startswith(b"/") else b"/" + path), authority


def add_header(pieces: list[bytes], name: bytes, value: bytes) -> None:
    """Append one header line to a head's pieces, as (name, b": ", value, CRLF)."""
    # Four appends, not `+= (…)`: compiled, an append is a C call where `+=` builds a tuple first.
    pieces.append(name)
    pieces.append(b": ")
    pieces.append(value)
    pieces.append(b"\r\n")


def header_class(name: bytes) -> int:
    """The class of a header name, case-insensitively."""
    cls = CLASS_OF.get(name)
    if cls is None:
        cls = _classify(name.lower())
        if len(CLASS_OF) < _CLASS_OF_MAX:
            CLASS_OF[name] = cls
    return cls


def _classify(lower: bytes) -> int:
    cls = _BY_LOWER.get(lower)
    if cls is not None:
        return cls
    if lower.startswith(b"x-forwarded-"):
        return FORWARDING
    if b"_" in lower:
        # Many servers (CGI/WSGI naming) read `X_Forwarded_Host` as `X-Forwarded-Host`: an underscore
        # alias of a header the router interprets would slip past its policy, so it never passes.
        dashed = lower.replace(b"_", b"-")
        if dashed in (b"content-length", b"transfer-encoding"):
            return UNDERSCORE_FRAMING
        if dashed in _BY_LOWER or dashed.startswith(b"x-forwarded-"):
            return DROP
    return KEEP


def forwarding_prefix(xff: bytes, real_ip: bytes, proto: bytes, passed: bytes) -> bytes:
    """The forwarding header lines of a request head, up to the value of X-Forwarded-Host."""
    return b"X-Forwarded-For: %s\r\nX-Real-IP: %s\r\n%sX-Forwarded-Proto: %s\r\nX-Forwarded-Host: " % (
        xff,
        real_ip,
        passed,
        proto,
    )


def trusted_forwarding(
    forwarded_for: bytes, forwarding: list[tuple[int, bytes, bytes]] | None, peer: bytes, host: bytes
) -> tuple[bytes, bytes]:
    """(forwarding prefix, X-Forwarded-Host value) for a request from a trusted proxy.

    The proxy's own values win and the peer is appended to X-Forwarded-For; what it did not send is the
    router's own view, as for any client. Its other forwarding headers (Forwarded, X-Forwarded-Port…)
    pass on unchanged.
    """
    xff = forwarded_for + b", " + peer if forwarded_for else peer
    proto, fhost, real_ip = b"http", host, peer
    lines: list[bytes] = []
    for cls, name, value in forwarding or ():
        if cls == FORWARDED_PROTO:
            proto = value
        elif cls == FORWARDED_HOST:
            fhost = value
        elif cls == REAL_IP:
            real_ip = value
        else:
            add_header(lines, name, value)
    return forwarding_prefix(xff, real_ip, proto, b"".join(lines)), fhost


#: Connection tokens that never remove a header: connection options, and Host (the target needs it).
CONNECTION_KEEPS: Final[frozenset[bytes]] = frozenset({b"close", b"keep-alive", b"upgrade", b"host"})


def connection_tokens(values: list[bytes]) -> set[bytes]:
    """Lower-cased tokens of every Connection header."""
    tokens: set[bytes] = set()
    for value in values:
        for token in value.split(b","):
            token = token.strip().lower()
            if token:
                tokens.add(token)
    return tokens


def without_named(pieces: list[bytes], named: set[bytes]) -> list[bytes]:
    """Header pieces (name, b": ", value, CRLF, …) without the headers whose lower-cased name is in `named`."""
    kept: list[bytes] = []
    for i in range(0, len(pieces), 4):
        if pieces[i].lower() not in named:
            kept += pieces[i : i + 4]
    return kept


#: Classes other than KEEP whose headers a response carries through unchanged.
KEPT_IN_RESPONSE: Final[frozenset[int]] = frozenset(
    {HOST, FORWARDED_FOR, EXPECT, SET_COOKIE, CACHE_CONTROL, VARY, ACCEPT_ENCODING}
)


def response_framing(
    lines: list[bytes], special: list[tuple[bytes, bytes]]
) -> tuple[bytes | None, bool, bytes]:
    """Framing of an upstream response from its non-plain headers; drops the lines Connection names.

    `lines` holds the end-to-end headers (as `without_named` pieces, after a status-line slot) and is
    edited in place; returns (content_length, chunked, upgrade): the caller adds the framing it chooses.
    """
    length: bytes | None = None
    chunked = False
    upgrade = b""
    connection: list[bytes] = []
    for name, value in special:
        cls = header_class(name)
        if cls == CONTENT_LENGTH:
            length = value
        elif cls == TRANSFER_ENCODING:
            chunked = True
        elif cls == CONNECTION:
            connection.append(value)
        elif cls == UPGRADE:
            upgrade = value
    if connection:
        named = connection_tokens(connection) - CONNECTION_KEEPS
        if named:
            lines[1:] = without_named(lines[1:], named)
    return length, chunked, upgrade


#: Cached status lines by code (read directly on the hot path; `status_line` fills it).
STATUS_LINES: Final[dict[int, bytes]] = {}


def status_line(status: int) -> bytes:
    """`HTTP/1.1 <code> <reason>\\r\\n`, cached per code."""
    line = STATUS_LINES.get(status)
    if line is None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Unknown"
        line = f"HTTP/1.1 {status} {reason}\r\n".encode()
        if len(STATUS_LINES) < 1000:
            STATUS_LINES[status] = line
    return line


def local_response(status: int, message: str, request_id: bytes, close: bool) -> bytes:
    """A short plain-text response produced by the router itself (errors, refusals)."""
    body = f"{status} {message}\n".encode()
    parts = [
        status_line(status),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: ",
        str(len(body)).encode(),
        b"\r\n",
    ]
    if request_id:
        parts += [b"X-Request-Id: ", request_id, b"\r\n"]
    if close:
        parts.append(b"Connection: close\r\n")
    parts += [b"\r\n", body]
    return b"".join(parts)


IDEMPOTENT: Final[frozenset[bytes]] = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})
