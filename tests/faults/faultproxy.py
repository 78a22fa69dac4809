"""A TCP fault proxy for tests: 127.0.0.1:<port> forwards to an upstream (MariaDB, memcached…) and injects
a fault chosen at run time.

Modes (`proxy.set(mode, latency=…)`, effective at once for open and new connections):
- `pass`: forward bytes both ways;
- `latency`: hold each chunk `latency` seconds before forwarding it;
- `reset`: reset (RST) every open connection, and each new one as soon as it is accepted;
- `hang`: accept and read, forward nothing, never close — a dependency that stopped answering.
Leaving `hang` delivers what was held. Every socket is closed by `close()`; threads are daemons that end
with their sockets.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import Literal

Mode = Literal["pass", "latency", "reset", "hang"]
MODES: tuple[Mode, ...] = ("pass", "latency", "reset", "hang")
_CHUNK = 65536


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER with a zero timeout)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultProxy:
    """Listens on 127.0.0.1 (a free port); `address` is where clients connect instead of `upstream`."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.mode: Mode = "pass"
        self.latency = 0.0
        self.accepted = 0
        self._changed = threading.Condition()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = int(self._listener.getsockname()[1])
        self._acceptor = threading.Thread(target=self._accept, name=f"faultproxy-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def address(self) -> str:
        """`127.0.0.1:<port>`."""
        return f"127.0.0.1:{self.port}"

    def set(self, mode: Mode, latency: float = 0.0) -> None:
        """Switch the fault now; `reset` also resets every connection open at this moment."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        with self._changed:
            self.mode, self.latency = mode, latency
            doomed = list(self._open) if mode == "reset" else []
            self._changed.notify_all()
        for sock in doomed:
            self._drop(sock, reset=True)

    def close(self) -> None:
        """Stop listening and close every connection."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
            doomed = list(self._open)
        self._listener.close()
        for sock in doomed:
            self._drop(sock, reset=True)
        self._acceptor.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        if not self._gate(client):
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            self._drop(client, reset=True)
            return
        upstream.settimeout(None)
        self._track(upstream)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy `source` → `sink` through the gate until either side ends."""
        while True:
            try:
                data = source.recv(_CHUNK)
            except OSError:
                data = b""
            if not data or not self._gate(source):
                self._drop(source, reset=False)
                self._drop(sink, reset=False)
                return
            try:
                sink.sendall(data)
            except OSError:
                self._drop(source, reset=False)
                return

    def _gate(self, sock: socket.socket) -> bool:
        """Wait while the proxy hangs, sleep the latency, reset on `reset`; False when `sock` is finished."""
        with self._changed:
            while self.mode == "hang" and not self._closed and sock in self._open:
                self._changed.wait(0.5)
            mode, latency = self.mode, self.latency
            if self._closed or sock not in self._open:
                return False
        if mode == "reset":
            self._drop(sock, reset=True)
            return False
        if mode == "latency" and latency > 0:
            time.sleep(latency)
        return True

    def _track(self, sock: socket.socket) -> None:
        with self._changed:
            self._open.add(sock)

    def _drop(self, sock: socket.socket, reset: bool) -> None:
        with self._changed:
            known = sock in self._open
            self._open.discard(sock)
            self._changed.notify_all()
        if not known:
            return
        if reset:
            _reset(sock)
        else:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
