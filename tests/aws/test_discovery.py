"""ElastiCache memcached auto discovery, against a loopback server that answers like a configuration endpoint."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sprout.errors import ServiceError
from sprout.providers.aws.boot import session_store_url
from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.discovery import discover, parse_config

ANSWER = (
    b"CONFIG cluster 0 147\r\n12\n"
    b"shop-cache.abc.0001.euc1.cache.amazonaws.com|10.0.10.5|11211 "
    b"shop-cache.abc.0002.euc1.cache.amazonaws.com|10.0.11.7|11211\n\r\nEND\r\n"
)


@pytest.fixture
def endpoint() -> Iterator[str]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            assert conn.recv(100) == b"config get cluster\r\n"
            conn.sendall(ANSWER)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        thread.join(timeout=5)


def test_nodes_come_from_the_configuration_endpoint(endpoint: str) -> None:
    assert discover(endpoint) == ["10.0.10.5:11211", "10.0.11.7:11211"]


def test_session_store_url_lists_every_node(endpoint: str) -> None:
    config = BootConfig(
        app="shop", env="prod", store_url="s3://b/shop", web="x", install=None, health_path="/", port=8080,
        region="eu-central-1", log_group="/sprout/shop/prod",
        sessions={"engine": "memcached", "discovery": endpoint},
    )  # fmt: skip
    assert session_store_url(config) == "memcached://10.0.10.5:11211,10.0.11.7:11211"


def test_a_plain_memcached_is_not_a_configuration_endpoint() -> None:
    with pytest.raises(ValueError, match="not a cluster config answer"):
        parse_config(b"ERROR\r\n")
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    with pytest.raises(ServiceError, match=f"memcached auto discovery at 127.0.0.1:{port}"):
        discover(f"127.0.0.1:{port}", timeout=1)
