"""Running a router worker: serve the inherited listeners and admin API, restore the table, shut down gracefully."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import uvloop

from sprout.errors import UserError
from sprout.router.accesslog import AccessLog
from sprout.router.admin import MAX_HEAD, AdminServer
from sprout.router.options import ADMIN_BACKLOG, BACKLOG, Options
from sprout.router.proxy import ClientProtocol, TlsClientProtocol
from sprout.router.router import Router
from sprout.router.table import load_table
from sprout.router.tls import TlsFront

log = logging.getLogger("sprout.router")


def read_or_create_token(path: Path) -> str:
    """The admin token from `path`; a new random one is written (mode 0600) when the file is missing.

    Like the API's token, a file other users can read is refused: whoever reads it drives the routing.
    """
    try:
        mode = path.stat().st_mode & 0o777
        token = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token
    if mode & 0o077:
        raise UserError(f"{path}: router token file has mode {mode:o}; run `chmod 600 {path}`")
    if not token:
        raise UserError(f"{path}: token file is empty; write a token in it or delete it to get a new one")
    return token


async def serve(
    options: Options,
    token: str,
    ready: Callable[[str], None],
    proxy_sock: socket.socket,
    admin_sock: socket.socket,
    https_sock: socket.socket | None = None,
) -> None:
    """Serve the listening sockets until SIGTERM/SIGINT, then stop accepting and let in-flight requests finish.

    The sockets are the supervisor's (bound once, shared by every worker): a worker never binds, so the
    backlog asked for is passed again here, where asyncio would otherwise re-listen with its default 100.
    """
    loop = asyncio.get_running_loop()
    config = options.config
    access_log = (
        AccessLog(
            options.access_log,
            sample=config.access_sample,
            slow=config.access_slow,
            rotate_bytes=config.access_rotate_bytes,
        )
        if options.access_log is not None
        else None
    )
    router = Router(config, loop, options.state, access_log)
    if options.state is not None:
        router.apply_table(load_table(options.state), persist=False, restored=True)
    if https_sock is not None:
        assert options.tls_dir is not None
        router.tls = TlsFront(options.tls_dir, https_sock.getsockname()[1])
        router.tls.reload()
    router.start_ticker()
    proxy_sock.setblocking(False)
    admin_sock.setblocking(False)
    server = await loop.create_server(lambda: ClientProtocol(router), sock=proxy_sock, backlog=BACKLOG)
    https_server = None
    if https_sock is not None and router.tls is not None:
        https_sock.setblocking(False)
        https_server = await loop.create_server(
            lambda: TlsClientProtocol(router),
            sock=https_sock,
            backlog=BACKLOG,
            ssl=router.tls.listener,
            ssl_handshake_timeout=config.header_timeout,
        )
    admin = AdminServer(router, token, options.config)
    admin_server = await asyncio.start_server(
        admin.handle, sock=admin_sock, backlog=ADMIN_BACKLOG, limit=MAX_HEAD
    )
    unix_server = None
    if options.admin_socket is not None:
        options.admin_socket.unlink(missing_ok=True)
        unix_server = await asyncio.start_unix_server(
            admin.handle, path=str(options.admin_socket), limit=MAX_HEAD
        )
        os.chmod(options.admin_socket, 0o600)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    listen_at = "{}:{}".format(*proxy_sock.getsockname()[:2])
    admin_at = "{}:{}".format(*admin_sock.getsockname()[:2])
    if options.admin_socket is not None:
        admin_at += f" and unix:{options.admin_socket}"
    if https_sock is not None:
        # Last, so that readers of the words before it (tests, scripts) are unaffected.
        admin_at += " https on {}:{}".format(*https_sock.getsockname()[:2])
    log.info("hot path: %s", admin.hot_path)
    ready(f"router listening on {listen_at} admin on {admin_at}")
    await stop.wait()
    log.info(
        "shutting down: no new connections, waiting up to %.0fs for in-flight requests",
        config.shutdown_timeout,
    )
    server.close()
    if https_server is not None:
        https_server.close()
    deadline = loop.time() + config.shutdown_timeout
    while True:
        for client in list(router.clients):
            client.shutdown_idle()
        if router.in_flight() == 0 or loop.time() >= deadline:
            break
        await asyncio.sleep(0.05)
    for client in list(router.clients):
        client.close()
    admin_server.close()
    if unix_server is not None:
        unix_server.close()
        options.admin_socket.unlink(missing_ok=True)  # type: ignore[union-attr]
    await router.close()


def run(
    options: Options,
    proxy_sock: socket.socket,
    admin_sock: socket.socket,
    https_sock: socket.socket | None = None,
) -> None:
    """Serve the given listening sockets on uvloop and block until shut down."""
    if options.token_file is None:
        raise UserError("router: --token-file is required (the admin API token is read from it)")
    token = read_or_create_token(options.token_file)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr
    )

    def ready(line: str) -> None:
        print(line, flush=True)

    uvloop.run(serve(options, token, ready, proxy_sock, admin_sock, https_sock))
