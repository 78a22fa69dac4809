"""Serve `/` and `/healthz` on $HOST:$PORT; say which instance, zone and version answered."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def identity() -> dict[str, str]:
    """Who is answering, from the app contract variables Sprout sets."""
    return {
        "app": os.environ.get("SPROUT_APP", "hello"),
        "instance": os.environ.get("SPROUT_INSTANCE", "local"),
        "zone": os.environ.get("SPROUT_ZONE", "-"),
        "version": os.environ.get("SPROUT_VERSION", "dev"),
    }


class Handler(BaseHTTPRequestHandler):
    """`/healthz` answers JSON for the router's checks; every other GET answers a greeting."""

    server_version = "hello/1"

    def do_GET(self) -> None:
        who = identity()
        if self.path == "/healthz":
            self.send_body(200, "application/json", json.dumps({"status": "ok", **who}))
        elif self.path == "/":
            greeting = os.environ.get("GREETING", "Hello")
            text = f"{greeting}: {who['app']} {who['version']} on {who['instance']} in zone {who['zone']}\n"
            self.send_body(200, "text/plain; charset=utf-8", text)
        else:
            self.send_body(404, "text/plain; charset=utf-8", "not found\n")

    def send_body(self, status: int, content_type: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        # One access line per request on stdout: Sprout's agent turns it into a log record.
        sys.stdout.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else '-'}\n")


def main() -> None:
    """Listen on $HOST:$PORT until SIGTERM, then stop accepting and exit 0."""
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"hello listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
