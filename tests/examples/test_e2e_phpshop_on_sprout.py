"""Issue 18, acceptance 1: the plain-PHP shop on `sprout up` (2 instances, zones a and b, MariaDB, managed
memcached nodes, PHP's own session handler) keeps 20 carts through the loss of zone a's node, its restart
and then the loss of zone b's node; 100 concurrent checkouts of 20 in stock sell exactly 20."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from node_loss import JSON, sprout_up, survive_node_losses

from sprout.services.database import normalise_url

HOST = "phpshop.localhost"
SHOPPERS = 100
STOCK = 20

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("php") is None, reason="php-cli with php-memcached is not installed"),
]


@pytest.fixture
def deployed(tmp_path: Path, mariadb_url: str) -> Iterator[tuple[Path, int]]:
    with sprout_up(tmp_path, "phpshop", "mysql://root@127.0.0.1:3306/phpshop", mariadb_url) as (home, port):
        yield home, port


def test_phpshop_keeps_every_cart_through_node_losses_and_never_oversells(
    deployed: tuple[Path, int], mariadb_url: str
) -> None:
    home, port = deployed
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, headers={"host": HOST}, timeout=15) as browser:
        page = browser.get("/")
        assert page.status_code == 200 and "served by instance" in page.text
        assert page.headers["x-sprout-instance"]
        assert browser.get("/static/style.css").headers["cache-control"] == "public, max-age=86400"

    survive_node_losses(home, "phpshop", url, HOST)

    engine = sa.create_engine(normalise_url(mariadb_url))
    try:
        with engine.begin() as conn:
            ball = conn.execute(sa.text("SELECT id FROM products WHERE slug = 'signed-ball'")).scalar_one()
            conn.execute(sa.text("UPDATE products SET stock = :n WHERE id = :id"), {"n": STOCK, "id": ball})
        shoppers = [
            httpx.Client(base_url=url, headers={"host": HOST, **JSON}, timeout=60) for _ in range(SHOPPERS)
        ]
        try:
            for shopper in shoppers:
                assert shopper.post("/cart/add", data={"product_id": ball, "quantity": 1}).status_code == 200
            with ThreadPoolExecutor(max_workers=SHOPPERS) as pool:
                codes = sorted(pool.map(lambda s: s.post("/checkout").status_code, shoppers))
        finally:
            for shopper in shoppers:
                shopper.close()
        assert codes.count(201) == STOCK and codes.count(409) == SHOPPERS - STOCK, codes
        with engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT stock FROM products WHERE id = :id"), {"id": ball}).scalar_one()
                == 0
            )
            sold = conn.execute(
                sa.text("SELECT COALESCE(SUM(quantity), 0) FROM order_items WHERE product_id = :id"),
                {"id": ball},
            ).scalar_one()
            assert sold == STOCK
    finally:
        engine.dispose()
