"""A small real backend for router tests: uvicorn (uvloop + httptools) serving a raw ASGI app.

Run: python router_backend.py --version v1 [--log FILE] [--unhealthy]; prints "PORT <n>" when ready.
Endpoints: /healthz (503 after POST /control/fail, 200 after POST /control/ok), /sleep?s=2,
/echo (POST body back), /count (consume body, return its length), /cache (public max-age=60),
/headers (request headers as JSON), anything else → "<version> <id>".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
from typing import Any
from urllib.parse import parse_qs

import uvicorn

State = dict[str, Any]


def make_app(version: str, ident: str, log_path: str | None, healthy: bool) -> Any:
    state: State = {"healthy": healthy, "hits": 0}
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if log_path else None

    async def read_body(receive: Any) -> bytes:
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def send_simple(
        send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        base = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": base + (headers or [])})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path = scope["path"]
        method = scope["method"]
        if log_fd is not None and path != "/healthz":
            os.write(log_fd, f"{method} {path}\n".encode())
        query = parse_qs(scope.get("query_string", b"").decode())
        if path == "/healthz":
            await send_simple(
                send, 200 if state["healthy"] else 503, b"ok" if state["healthy"] else b"failing"
            )
        elif path == "/control/fail":
            state["healthy"] = False
            await send_simple(send, 200, b"now failing")
        elif path == "/control/ok":
            state["healthy"] = True
            await send_simple(send, 200, b"now healthy")
        elif path == "/sleep":
            await read_body(receive)
            await asyncio.sleep(float(query.get("s", ["1"])[0]))
            await send_simple(send, 200, f"slept {version} {ident}".encode())
        elif path == "/echo":
            body = await read_body(receive)
            await send_simple(send, 200, body, [(b"x-version", version.encode())])
        elif path == "/count":
            total = 0
            while True:
                message = await receive()
                total += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            await send_simple(send, 200, str(total).encode())
        elif path == "/stream":
            n = int(query.get("n", ["10"])[0])
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
            )
            for i in range(n):
                await send({"type": "http.response.body", "body": f"chunk {i}\n".encode(), "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif path == "/cache":
            state["hits"] += 1
            await send_simple(
                send,
                200,
                f"{version} hit {state['hits']}".encode(),
                [(b"cache-control", b"public, max-age=60"), (b"vary", b"Accept-Encoding")],
            )
        elif path == "/private":
            state["hits"] += 1
            await send_simple(
                send, 200, f"{version} hit {state['hits']}".encode(), [(b"cache-control", b"private")]
            )
        elif path == "/headers":
            doc = {k.decode(): v.decode() for k, v in scope["headers"]}
            await send_simple(send, 200, json.dumps(doc).encode())
        else:
            await read_body(receive)
            await send_simple(send, 200, f"{version} {ident}".encode(), [(b"x-version", version.encode())])

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="v1")
    parser.add_argument("--id", default="")
    parser.add_argument("--log")
    parser.add_argument("--unhealthy", action="store_true")
    args = parser.parse_args()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    port = sock.getsockname()[1]
    app = make_app(args.version, args.id or str(port), args.log, not args.unhealthy)
    config = uvicorn.Config(
        app, fd=sock.fileno(), loop="uvloop", http="httptools", log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    print(f"PORT {port}", flush=True)
    asyncio.run(server.serve())


if __name__ == "__main__":
    main()
