"""The router's command line: one parser for the supervisor and its worker, the listening sockets it binds.

Kept free of asyncio and the proxy so that the supervisor, which imports it, stays small.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass, field
from pathlib import Path

from sprout.errors import UserError
from sprout.paths import Home
from sprout.router.config import RouterConfig

#: Connections the kernel queues on the traffic socket while no worker accepts (capped by somaxconn).
BACKLOG = 4096
ADMIN_BACKLOG = 128


@dataclass(frozen=True)
class Options:
    """Where the router listens and keeps its files."""

    listen: str = "127.0.0.1:8080"
    admin: str = "127.0.0.1:8081"
    admin_socket: Path | None = None
    token_file: Path | None = None
    state: Path | None = None
    access_log: Path | None = None
    https: str | None = None
    tls_dir: Path | None = None
    config: RouterConfig = field(default_factory=RouterConfig)


_D = RouterConfig()
#: RouterConfig fields settable on the command line: (field, type, help).
_LIMITS: tuple[tuple[str, type, str], ...] = (
    ("max_header_bytes", int, "Largest request header block (else 431)."),
    ("max_request_line", int, "Longest request target (else 414)."),
    ("header_timeout", float, "Seconds to receive a request head (else 408)."),
    ("idle_timeout", float, "Seconds an idle keep-alive client connection stays."),
    ("max_connections", int, "Client connections accepted at once."),
    ("connect_timeout", float, "Seconds to connect to a target."),
    ("response_timeout", float, "Seconds to wait for a response head (else 504)."),
    ("upstream_idle_timeout", float, "Seconds a pooled upstream connection idles."),
    ("max_retries", int, "Extra attempts when a request could not be delivered."),
    ("cache_bytes", int, "Edge cache budget per route, in bytes."),
    ("shutdown_timeout", float, "Seconds in-flight requests get on SIGTERM."),
    ("admin_max_connections", int, "Admin connections served at once (more get 503)."),
    ("admin_max_body", int, "Largest admin request body (else 413)."),
    ("access_sample", float, "Share (0-1) of successful requests kept in the access files."),
    ("access_slow", float, "Seconds from which a request is slow (always logged and indexed)."),
    ("access_rotate_bytes", int, "Size in bytes at which the current access file is rotated."),
    ("access_log_flush", float, "Seconds between access log writes while fewer than 1,024 requests queue."),
)


def parser(prog: str = "sprout router") -> argparse.ArgumentParser:
    """The router's options (`sprout router --help`)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run the router (the data plane) until SIGTERM; prints 'router listening on … admin on "
        "…' when ready. A small supervisor holds the sockets and replaces a worker that dies or hangs.",
    )
    p.add_argument("--listen", default="127.0.0.1:8080", help="host:port for proxied traffic (port 0: any).")
    p.add_argument(
        "--admin", default="127.0.0.1:8081", help="host:port of the admin API (keep it on loopback)."
    )
    p.add_argument("--admin-socket", type=Path, help="Also serve the admin API on this unix socket.")
    p.add_argument(
        "--token-file", type=Path, help="Admin bearer token file; created with a random token if missing."
    )
    p.add_argument("--state", type=Path, help="Routing table file, restored at start, saved on change.")
    p.add_argument(
        "--access-log",
        type=Path,
        help="Append errors and slow requests here as JSON lines, "
        "the rest to the access files beside it (off if unset).",
    )
    p.add_argument("--https", help="host:port for HTTPS traffic (off if unset); certificates from --tls-dir.")
    p.add_argument("--tls-dir", type=Path, help="Certificate folder (default: SPROUT_HOME's tls folder).")
    for name, kind, text in _LIMITS:
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=getattr(_D, name), help=text)
    p.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        help="Address or CIDR of a proxy in front whose forwarding headers are kept (repeatable; default none).",
    )
    return p


def options_from(args: argparse.Namespace) -> Options:
    """Options from parsed arguments; the token and table files default to SPROUT_HOME's run folder."""
    home = Home.from_env()
    config = RouterConfig(
        **{name: getattr(args, name) for name, _, _ in _LIMITS}, trusted_proxies=tuple(args.trusted_proxy)
    )
    return Options(
        listen=args.listen,
        admin=args.admin,
        admin_socket=args.admin_socket,
        token_file=args.token_file or home.run / "router.token",
        state=args.state or home.run / "router-table.json",
        access_log=args.access_log,
        https=args.https,
        tls_dir=args.tls_dir or home.tls,
        config=config,
    )


def split_address(value: str, what: str) -> tuple[str, int]:
    """`host:port` → (host, port); UserError naming the option when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise UserError(f"{what} {value!r}: expected host:port such as 127.0.0.1:8080")
    return host.strip("[]") or "127.0.0.1", int(port)


def bind(address: str, what: str, backlog: int) -> socket.socket:
    """A listening TCP socket on `address` (host:port); UserError naming the option when it is taken."""
    host, port = split_address(address, what)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror}; pick a free port") from exc
    sock.listen(backlog)
    return sock
