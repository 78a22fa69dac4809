"""Serve `/healthz` at once and every other GET after 20 ms of work on $HOST:$PORT, naming the instance."""

from __future__ import annotations

import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORK_SECONDS = 0.02


class Handler(BaseHTTPRequestHandler):
    """Health checks answer immediately; other paths sleep as if working, then say who answered."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path != "/healthz":
            time.sleep(WORK_SECONDS)
        body = f"busy on {os.environ.get('SPROUT_INSTANCE', 'local')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        # Quiet: the test reads the router's counters, not access lines.
        return


def main() -> None:
    """Listen on $HOST:$PORT until SIGTERM."""
    server = ThreadingHTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
