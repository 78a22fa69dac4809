"""A real WebSocket echo backend for router tests: uvicorn + websockets, prints `PORT n` when listening."""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo every WebSocket message back (text upper-cased, bytes reversed); plain HTTP gets a 200."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    message = await receive()
    assert message["type"] == "websocket.connect"
    forwarded = dict(scope["headers"]).get(b"x-forwarded-for", b"").decode()
    await send({"type": "websocket.accept", "subprotocol": None})
    await send({"type": "websocket.send", "text": f"hello {scope['path']} via {forwarded}"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"].upper()})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


def main() -> None:
    """Serve on a free loopback port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        app, ws="websockets-sansio", log_level="warning", lifespan="off", ws_max_size=4 << 20
    )
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
