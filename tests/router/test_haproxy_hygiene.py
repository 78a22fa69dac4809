"""The HAProxy engine's hygiene, shown against the embedded router.

Header policy (table-driven, both engines): the same raw requests are sent to each engine in front of a
backend that keeps the exact bytes it receives; each case says what the client gets and which headers
the app sees or must not see. Where HAProxy cannot do what the embedded router does, the case names the
status of each engine (the difference is listed in docs/router.md, "What the HAProxy engine does not do").

Runtime API (HAProxy only): values from the routing table are escaped, so a health path such as
`/hc;v=1` reaches HAProxy's map as exactly that value, and no text of a value ever runs as a command.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from raw_backend import RawBackend

from conftest import Router, route, spawn_haproxy, spawn_router, table, wait_for
from sprout.errors import ServiceError
from sprout.router.haproxy.admin import HaproxyAdmin
from sprout.router.haproxy.config import Layout, remove_socket_folder
from sprout.router.haproxy.runtime import command

HOST = b"h.localhost"
#: The forwarding headers an engine sets for a client at 127.0.0.1 that it does not trust.
OWN = {
    "x-forwarded-for": "127.0.0.1",
    "x-real-ip": "127.0.0.1",
    "x-forwarded-proto": "http",
    "x-forwarded-host": "h.localhost",
}
SPOOFED = (
    b"Forwarded: for=6.6.6.6;proto=https\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\n"
    b"X-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n"
    b"X-Forwarded-Prefix: /admin\r\nX-Forwarded-Server: evil\r\n"
)
UNDERSCORED = (
    b"X_Forwarded_For: 7.7.7.7\r\nx_real_ip: 7.7.7.7\r\nX_Forwarded_Host: evil.example\r\n"
    b"X-Forwarded_Prefix: /admin\r\nx_forwarded_port: 443\r\nX_Request_Id: spoofed\r\nKeep_Alive: 1\r\n"
)
SPOOFED_NAMES = ["forwarded", "x-forwarded-port", "x-forwarded-prefix", "x-forwarded-server"]
UNDERSCORED_NAMES = [
    "x_forwarded_for", "x_real_ip", "x_forwarded_host", "x-forwarded_prefix", "x_forwarded_port",
    "x_request_id", "keep_alive",
]  # fmt: skip
LONG = b"/" + b"a" * 8191  # a request target of exactly 8 KiB: the longest both engines take


def get(path: bytes, *lines: bytes, version: bytes = b"HTTP/1.1", method: bytes = b"GET") -> bytes:
    """A request head with `lines` (each ending in CRLF), closing the connection."""
    return method + b" " + path + b" " + version + b"\r\n" + b"".join(lines) + b"Connection: close\r\n\r\n"


def host(value: bytes = HOST) -> bytes:
    return b"Host: " + value + b"\r\n"


# (name, request, status — one for both engines, or {engine: status} where they differ —, the headers
# the app gets {name: value} or None when nothing may reach it, the header names it must not get)
CASES = [
    ("plain", get(b"/plain", host()), 200, OWN, []),
    ("client-forwarding-replaced", get(b"/spoofed", host(), SPOOFED), 200, OWN, SPOOFED_NAMES),
    ("underscore-aliases-dropped", get(b"/underscored", host(), UNDERSCORED, b"X_Custom: kept\r\n"), 200,
     {**OWN, "x_custom": "kept"}, UNDERSCORED_NAMES),
    ("underscore-content-length", get(b"/cl", host(), b"Content_Length: 5\r\n"), 400, None, []),
    ("underscore-transfer-encoding", get(b"/te", host(), b"Transfer_Encoding: chunked\r\n"), 400, None, []),
    ("request-id-kept", get(b"/rid", host(), b"X-Request-Id: rid-1\r\n"), 200,
     {**OWN, "x-request-id": "rid-1"}, []),
    ("request-id-128-kept", get(b"/rid128", host(), b"X-Request-Id: " + b"r" * 128 + b"\r\n"), 200,
     {"x-request-id": "r" * 128}, []),
    ("request-id-with-space-replaced", get(b"/rid-space", host(), b"X-Request-Id: a b\r\n"), 200, OWN, []),
    ("request-id-129-replaced", get(b"/rid129", host(), b"X-Request-Id: " + b"r" * 129 + b"\r\n"), 200, OWN, []),
    ("request-id-last-sane-kept", get(b"/rid-2", host(), b"X-Request-Id: b c\r\nX-Request-Id: rid-2\r\n"),
     200, {"x-request-id": "rid-2"}, []),
    # The embedded router keeps `a` here, HAProxy makes one (it looks at the last only): never `b c`.
    ("request-id-last-insane", get(b"/rid-last", host(), b"X-Request-Id: a\r\nX-Request-Id: b c\r\n"),
     200, OWN, []),
    ("request-id-non-ascii-replaced", get(b"/rid-utf8", host(), b"X-Request-Id: \xc3\xa9t\xc3\xa9\r\n"), 200,
     OWN, []),
    ("host-list", get(b"/host-list", host(HOST + b", evil.example")), 400, None, []),
    ("host-twice", get(b"/host-twice", host(), host(b"evil.example")), 400, None, []),
    ("host-with-port-list", get(b"/host-port-list", host(HOST + b":80,evil.example")), 400, None, []),
    ("host-userinfo", get(b"/host-userinfo", host(b"u@" + HOST)), 400, None, []),
    ("host-ipv6-with-port", get(b"/host-ipv6", host(b"[::1]:80")), 404, None, []),
    ("host-port-not-digits", get(b"/host-port-abc", host(HOST + b":abc")), 400, None, []),
    # An absolute-form target names its host: the embedded router routes by it, HAProxy refuses a Host
    # header that names another; neither routes by that other name.
    ("absolute-form-by-authority", get(b"http://h.localhost/absolute", host(b"evil.example")),
     {"sprout": 200, "haproxy": 400}, OWN, []),
    ("no-host-http11", get(b"/no-host"), 400, None, []),
    ("empty-host-http11", get(b"/empty-host", b"Host:\r\n"), 400, None, []),
    ("no-host-http10-no-route", get(b"/no-host-10", version=b"HTTP/1.0"), 404, None, []),
    ("connect", get(HOST + b":443", host(), method=b"CONNECT"), 405, None, []),
    ("trace-forwarded", get(b"/trace", host(), method=b"TRACE"), 200, OWN, []),
    ("target-of-8-kib", get(LONG, host()), 200, OWN, []),
    ("target-over-8-kib", get(LONG + b"a", host()), 414, None, []),
    ("target-of-20-kib", get(b"/" + b"a" * 20000, host()), {"sprout": 414, "haproxy": 400}, None, []),
    ("header-block-over-16-kib", get(b"/big", host(), b"X-Big: " + b"a" * 17000 + b"\r\n"),
     {"sprout": 431, "haproxy": 400}, None, []),
]  # fmt: skip


@pytest.fixture(scope="module", params=["sprout", "haproxy"])
def hygiene_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Router, RawBackend]]:
    """A raw backend behind one engine (trusting no proxy), route `h` with host h.localhost."""
    engine = str(request.param)
    folder: Path = tmp_path_factory.mktemp(f"hygiene-{engine}")
    backend = RawBackend()
    router: Router | None = None
    try:
        router = spawn_router(folder) if engine == "sprout" else spawn_haproxy(folder)
        target = {"id": "raw", "address": backend.address, "healthy": True}
        router.admin.put_table(table(route("h", [{"name": "g", "targets": [target]}])))
        ready = router
        wait_for(
            lambda: exchange(ready, get(b"/ready", host()))[0].startswith(b"HTTP/1.1 200"), 10, "routing"
        )
        yield engine, router, backend
    finally:
        if router is not None:
            router.kill()
        remove_socket_folder(Layout(folder / "haproxy"))
        close_backend(backend)


def close_backend(backend: RawBackend) -> None:
    """Close the raw backend at once: a shutdown wakes its thread blocked in accept(), which a close
    alone does not (the close would then wait 5 s for it)."""
    backend._sock.shutdown(socket.SHUT_RDWR)
    backend.close()


def exchange(router: Router, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send raw bytes; everything received and whether the engine closed the connection."""
    with socket.create_connection(("127.0.0.1", router.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
    return received, False


def header_lines(head: bytes) -> list[tuple[str, str]]:
    """A request or response head's header lines as (lower-case name, value)."""
    lines = head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    pairs = [line.split(b":", 1) for line in lines]
    return [(name.decode("latin-1").lower(), value.strip().decode("latin-1")) for name, value in pairs]


@pytest.mark.parametrize(
    ("name", "request_bytes", "status", "seen", "unseen"), CASES, ids=[c[0] for c in CASES]
)
def test_header_hygiene(
    hygiene_stack: tuple[str, Router, RawBackend],
    name: str,
    request_bytes: bytes,
    status: int | dict[str, int],
    seen: dict[str, str] | None,
    unseen: list[str],
) -> None:
    engine, router, backend = hygiene_stack
    want = status[engine] if isinstance(status, dict) else status
    path = request_bytes.split(b" ", 2)[1]
    if b"://" in path:  # absolute-form: the app gets the origin form
        path = path[path.index(b"/", path.index(b"://") + 3) :]
    backend.received.pop(path, None)
    received, closed = exchange(router, request_bytes)
    assert received.startswith(b"HTTP/1.1 %d " % want), (name, received[:200])
    if want in (400, 414, 431):
        assert closed, f"{name}: a refused request must close the connection"
    got = backend.received.get(path)
    if seen is None or want >= 400:
        assert got is None, (name, got)
        return
    assert got is not None, f"{name}: nothing reached the app"
    headers = header_lines(got)
    names = [n for n, _ in headers]
    for header, value in seen.items():
        assert [v for n, v in headers if n == header] == [value], (name, header, got)
    for header in unseen:
        assert header not in names, (name, header, got)
    # One request id, the same for the app and the client; a client's insane one is never passed on.
    sent_ids = [v for n, v in headers if n == "x-request-id"]
    answered_ids = [v for n, v in header_lines(received) if n == "x-request-id"]
    assert len(sent_ids) == 1 and answered_ids == sent_ids, (name, sent_ids, answered_ids)
    client_ids = [v for n, v in header_lines(request_bytes) if n == "x-request-id"]
    assert sent_ids[0] not in [v for v in client_ids if not sane_request_id(v)], (name, sent_ids)


def sane_request_id(value: str) -> bool:
    """What both engines keep of a client's X-Request-Id (the embedded router also keeps a tab in one)."""
    return 0 < len(value) <= 128 and all("!" <= c <= "~" for c in value)


# -- the runtime API: nothing in a value runs as a command ---------------------------------------------

#: Legal or odd health paths, without spaces, whose characters HAProxy's CLI reads specially when not
#: escaped: `;` starts another command (here one that would add a host; tabs separate its words too),
#: `\` escapes, `<<` at the end opens a payload.
ODD_PATHS = [
    "/hc;v=1",
    "/hc;add\tmap\t{hosts}\tinjected.example\tslot9",
    "/a\\b;c\\;d",
    "/tail<<",
    "/x#y\tz",
]


@pytest.fixture
def haproxy_engine(tmp_path: Path) -> Iterator[tuple[Router, RawBackend]]:
    backend = RawBackend()
    router: Router | None = None
    try:
        router = spawn_haproxy(tmp_path)
        yield router, backend
    finally:
        if router is not None:
            router.kill()
        remove_socket_folder(Layout(tmp_path / "haproxy"))
        close_backend(backend)


def test_odd_health_paths_reach_the_map_exactly_and_run_nothing_else(
    haproxy_engine: tuple[Router, RawBackend],
) -> None:
    router, backend = haproxy_engine
    admin = router.admin
    assert isinstance(admin, HaproxyAdmin)
    layout = admin.layout
    paths = [p.replace("{hosts}", str(layout.map("hosts"))) for p in ODD_PATHS]
    routes = [
        route(f"r{i}", [{"name": "g", "targets": [{"id": f"t{i}", "address": backend.address}]}],
              health={"path": path, "interval": 0.1})
        for i, path in enumerate(paths)
    ]  # fmt: skip
    # One route's version and zone carry the same characters (the group and zone maps).
    routes[0]["groups"][0]["version"] = "v;1<<"
    routes[0]["groups"][0]["targets"][0]["zone"] = "z\\;a"
    result = admin.put_table(table(*routes))
    assert result["rejected"] == []
    api = admin.api
    checks = api.map_entries(layout.map("check"))
    slots = {name: slot for slot, name in api.map_entries(layout.map("routes")).items()}
    assert {checks[slots[f"r{i}"]] for i in range(len(paths))} == set(paths)
    assert sorted(api.map_entries(layout.map("hosts"))) == sorted(
        f"r{i}.localhost" for i in range(len(paths))
    )
    assert api.map_entries(layout.map("version")) == {"t0": "v;1<<"}
    assert api.map_entries(layout.map("zone")) == {"t0": "z\\;a"}
    # HAProxy's checks ask the backend for the exact paths (the tab is sent as is, like the router's).
    for path in paths:
        wait_for(lambda p=path: p.encode() in backend.received, 10, f"a check of {path!r}")
    # Applying the same table again changes nothing (the maps read back equal what is wanted).
    admin.put_table(table(*routes))
    assert api.map_entries(layout.map("check")) == checks


def test_values_that_cannot_be_sent_are_refused_by_name(haproxy_engine: tuple[Router, RawBackend]) -> None:
    router, backend = haproxy_engine
    admin = router.admin
    assert isinstance(admin, HaproxyAdmin)
    target = {"id": "t1", "address": backend.address}
    good = route("good", [{"name": "g", "targets": [target]}])
    bad = route("bad", [{"name": "g", "targets": []}], health={"path": "/hc\nshow info"})
    spaced = route("spaced", [{"name": "g", "targets": []}], hosts=["a b.localhost"])
    result = admin.put_table(table(good, bad, spaced))
    why = {r["route"]: r["error"] for r in result["rejected"]}
    assert set(why) == {"bad", "spaced"}, why
    assert "health path '/hc\\nshow info'" in why["bad"] and "line end" in why["bad"]
    assert "host 'a b.localhost'" in why["spaced"]
    # The rest of the table is served.
    assert admin.api.map_entries(admin.layout.map("hosts")) == {"good.localhost": "slot0"}
    # Below the admin, the runtime API refuses such a value itself, naming it, before sending anything.
    with pytest.raises(ServiceError, match=r"'/hc\\nshow info' cannot be sent"):
        admin.api.sync_map(admin.layout.map("check"), {"slot0": "/hc\nshow info"})
    with pytest.raises(ServiceError, match=r"'a b' holds whitespace"):
        admin.api.sync_map(admin.layout.map("hosts"), {"a b": "slot0"})


@pytest.mark.parametrize(
    ("words", "line"),
    [
        (("set", "map", "/m.map", "slot0", "/hc;v=1"), "set map /m.map slot0 /hc\\;v=1"),
        (("add", "map", "/a b/m.map", "k", "a\\b"), "add map /a\\ b/m.map k a\\\\b"),
        (("add", "map", "/m.map", "k", "x<<"), "add map /m.map k x\\<\\<"),
        (("add", "map", "/m.map", "k", "a\tb"), "add map /m.map k a\\\tb"),
        (("set", "server", "slot0/t1", "weight", "10"), "set server slot0/t1 weight 10"),
    ],
)
def test_command_escapes_each_word(words: tuple[str, ...], line: str) -> None:
    assert command(*words) == line


@pytest.mark.parametrize("value", ["", "a\nb", "a\rb", "a\x00b"])
def test_command_refuses_what_no_escape_carries(value: str) -> None:
    with pytest.raises(ServiceError, match="cannot be sent"):
        command("set", "map", "/m.map", "slot0", value)
