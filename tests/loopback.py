"""Loopback ports for the test kits: free, and never the same one twice in a run."""

from __future__ import annotations

import socket

_ISSUED: set[int] = set()


def free_port() -> int:
    """A free loopback port, never one handed out before in this test run.

    The kernel may give the same ephemeral port to two binds in a row once the first socket is
    closed; two instances started together on one port was a real (rare) failure.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _ISSUED:
            _ISSUED.add(port)
            return port
