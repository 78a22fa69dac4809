"""Issue test 2: 200 concurrent checkouts for 50 in stock on MariaDB, through the router, two instances."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
import sqlalchemy as sa
from example_procs import AppProcess, RouterProcess, app_env, release, route_to

from sprout.services import memcached
from sprout.services.database import normalise_url
from sprout.services.memcached import MemcachedNode

HOST = "microsite.localhost"
JSON = {"accept": "application/json"}
BUYERS = 200
STOCK = 50

pytestmark = pytest.mark.slow


async def _buyers(base_url: str, product_id: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=BUYERS)
    browsers = [
        httpx.AsyncClient(base_url=base_url, headers={"host": HOST}, timeout=60, limits=limits)
        for _ in range(BUYERS)
    ]
    try:
        added = await asyncio.gather(
            *(b.post("/cart/add", data={"product_id": product_id}, headers=JSON) for b in browsers)
        )
        assert all(r.status_code == 200 for r in added)
        return list(await asyncio.gather(*(b.post("/checkout", headers=JSON) for b in browsers)))
    finally:
        await asyncio.gather(*(b.aclose() for b in browsers))


def test_exactly_the_stock_is_sold_and_everyone_else_hears_sold_out(
    mariadb_url: str,
    memcached_nodes: list[MemcachedNode],
    start_app: Callable[..., AppProcess],
    start_router: Callable[[], RouterProcess],
) -> None:
    env = app_env("microsite", mariadb_url, memcached.session_store_url(memcached_nodes))
    release("microsite", env)
    engine = sa.create_engine(normalise_url(mariadb_url))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE products SET stock = :n WHERE slug = 'signed-ball'"), {"n": STOCK})
        product_id = conn.execute(sa.text("SELECT id FROM products WHERE slug = 'signed-ball'")).scalar_one()
    instances = [start_app("microsite", env, "a", "i-a"), start_app("microsite", env, "b", "i-b")]
    router = start_router()
    route_to(router, "microsite", HOST, instances)

    responses = asyncio.run(_buyers(router.url, int(product_id)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: STOCK, 409: BUYERS - STOCK}, statuses
    assert all(
        r.json() == {"error": "sold_out", "product": "Signed Match Ball"}
        for r in responses
        if r.status_code == 409
    )
    assert {r.headers["x-sprout-instance"] for r in responses} == {"i-a", "i-b"}
    with engine.connect() as conn:
        assert (
            conn.execute(sa.text("SELECT stock FROM products WHERE id = :i"), {"i": product_id}).scalar_one()
            == 0
        )
        assert conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one() == STOCK
        sold = conn.execute(
            sa.text("SELECT SUM(quantity) FROM order_items WHERE product_id = :i"), {"i": product_id}
        )
        assert sold.scalar_one() == STOCK
    engine.dispose()
