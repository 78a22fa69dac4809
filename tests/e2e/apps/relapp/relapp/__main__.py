"""Serve $HOST:$PORT; files beside the package make a version bad on purpose.

- `BAD_RATE` (a fraction, e.g. 0.05): every 1/rate-th request to / or /echo answers 500 (counted, so
  the share is exact, not a coin toss);
- `UNHEALTHY`: /healthz answers 500.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSION = os.environ.get("SPROUT_VERSION", "dev")
BAD_RATE = float((ROOT / "BAD_RATE").read_text()) if (ROOT / "BAD_RATE").exists() else 0.0
UNHEALTHY = (ROOT / "UNHEALTHY").exists()
_count = 0
_lock = threading.Lock()


def failing() -> bool:
    """Whether this request is one of the deliberately failed ones."""
    global _count
    if BAD_RATE <= 0:
        return False
    with _lock:
        _count += 1
        return _count % round(1 / BAD_RATE) == 0


class Handler(BaseHTTPRequestHandler):
    """GET / greets, POST /echo echoes the body, /healthz answers the checks."""

    protocol_version = "HTTP/1.1"
    # Head and body leave in one write: with keep-alive, Nagle + delayed ACK would add 40 ms a request.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path == "/healthz":
            if UNHEALTHY:
                self.reply(500, b"unhealthy on purpose\n")
            else:
                self.reply(200, b"ok\n")
        elif self.path == "/":
            self.reply(500 if failing() else 200, f"relapp {VERSION}\n".encode())
        else:
            self.reply(404, b"not found\n")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/echo":
            self.reply(500 if failing() else 200, body)
        else:
            self.reply(404, b"not found\n")

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("X-Sprout-Version", VERSION)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        if self.path != "/healthz" or UNHEALTHY:
            sys.stdout.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else '-'}\n")
            sys.stdout.flush()


def main() -> None:
    """Listen until SIGTERM."""
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(
        f"relapp {VERSION} listening on port {server.server_port}" + (" (UNHEALTHY)" if UNHEALTHY else ""),
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
