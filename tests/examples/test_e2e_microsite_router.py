"""Issue test 1: the microsite through the router with two instances in two zones, sessions on memcached.

The instances are real uvicorn processes started as the app contract says (the manifest's `web` command and
variables) and the Sprout router balances between them; the control plane is not involved.
"""

from __future__ import annotations

import os
import signal
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

pytestmark = pytest.mark.slow


def _stock(database_url: str, slug: str) -> int:
    engine = sa.create_engine(normalise_url(database_url))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text("SELECT stock FROM products WHERE slug = :s"), {"s": slug}).scalar_one()
            )
    finally:
        engine.dispose()


def test_cart_survives_instances_zones_and_a_lost_memcached_node(
    mariadb_url: str,
    memcached_nodes: list[MemcachedNode],
    start_app: Callable[..., AppProcess],
    start_router: Callable[[], RouterProcess],
) -> None:
    env = app_env("microsite", mariadb_url, memcached.session_store_url(memcached_nodes))
    assert release("microsite", env).strip().endswith("20 product(s) added")
    assert release("microsite", env).strip().endswith("0 product(s) added")
    instances = [start_app("microsite", env, "a", "i-a"), start_app("microsite", env, "b", "i-b")]
    router = start_router()
    route_to(router, "microsite", HOST, instances)
    scarf_stock = _stock(mariadb_url, "scarf")

    with httpx.Client(base_url=router.url, headers={"host": HOST}, timeout=10) as browser:
        catalogue = browser.get("/", headers=JSON).json()["products"]
        scarf = next(p for p in catalogue if p["slug"] == "scarf")
        added = browser.post("/cart/add", data={"product_id": scarf["id"], "quantity": 3}, headers=JSON)
        assert added.json() == {"cart": {str(scarf["id"]): 3}}

        served_by: set[str] = set()
        for _ in range(40):
            cart = browser.get("/cart", headers=JSON)
            assert cart.json()["lines"] == {str(scarf["id"]): 3}
            served_by.add(cart.headers["x-sprout-instance"])
        assert served_by == {"i-a", "i-b"}

        os.kill(memcached_nodes[0].pid, signal.SIGKILL)  # zone a's session node is gone
        for _ in range(10):
            assert browser.get("/cart", headers=JSON).json()["lines"] == {str(scarf["id"]): 3}

        checkout = browser.post("/checkout", headers=JSON)
        assert checkout.status_code == 201
        order = browser.get(f"/orders/{checkout.json()['order']}")
        assert order.status_code == 200 and "is confirmed" in order.text
        assert browser.get("/cart", headers=JSON).json()["lines"] == {}
    assert _stock(mariadb_url, "scarf") == scarf_stock - 3
