"""Serve `/` (health) and `/probe?path=P&pid=N`: try to read file P and /proc/N/environ, report how it went."""

from __future__ import annotations

import json
import os
import pwd
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def attempt(path: str) -> str:
    """`read N bytes` when `path` can be read, else the error's name and errno."""
    try:
        with open(path, "rb") as f:
            return f"read {len(f.read())} bytes"
    except OSError as exc:
        return f"{type(exc).__name__} errno {exc.errno}"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        report: dict[str, object] = {"uid": os.getuid(), "user": pwd.getpwuid(os.getuid()).pw_name}
        if url.path == "/probe":
            report["file"] = attempt(query["path"])
            report["environ"] = attempt(f"/proc/{query['pid']}/environ")
            report["own_environ"] = attempt("/proc/self/environ")
            report["home"] = os.environ.get("HOME", "")
        body = json.dumps(report).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), Handler).serve_forever()
