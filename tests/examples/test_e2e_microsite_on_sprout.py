"""Issue test 1 on the whole platform: `sprout up` the microsite (2 instances, zones a and b, MariaDB,
managed memcached sessions), then a shopper's cart follows them across instances through Sprout's router,
and 20 carts survive the loss of zone a's node, its restart by Sprout, then the loss of zone b's node
(issue 18, acceptance 2)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from node_loss import JSON, sprout, sprout_up, survive_node_losses

HOST = "microsite.localhost"

pytestmark = pytest.mark.slow


@pytest.fixture
def deployed(tmp_path: Path, mariadb_url: str) -> Iterator[tuple[Path, int]]:
    with sprout_up(tmp_path, "microsite", "mysql://root@127.0.0.1:3306/microsite", mariadb_url) as (
        home,
        port,
    ):
        yield home, port


def test_sprout_up_serves_the_shop_and_carts_survive_node_losses(deployed: tuple[Path, int]) -> None:
    home, port = deployed
    status = json.loads(sprout(home, "status", "--json").stdout)
    instances = next(e for e in status["environments"] if e["app"] == "microsite")["instances"]
    assert sorted(i["zone"] for i in instances) == ["a", "b"]

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"host": HOST}, timeout=10) as browser:
        page = browser.get("/")
        assert page.status_code == 200 and "served by instance" in page.text
        products = browser.get("/", headers=JSON).json()["products"]
        cap = next(p for p in products if p["slug"] == "cap")
        browser.post("/cart/add", data={"product_id": cap["id"], "quantity": 2}, headers=JSON)
        served_by = set()
        for _ in range(40):
            cart = browser.get("/cart", headers=JSON)
            assert cart.json()["lines"] == {str(cap["id"]): 2}
            served_by.add(cart.headers["x-sprout-instance"])
        assert served_by == {i["id"] for i in instances}
        assert browser.post("/checkout", headers=JSON).status_code == 201
        static = browser.get("/static/style.css")
        assert static.headers["cache-control"] == "public, max-age=86400"

    survive_node_losses(home, "microsite", f"http://127.0.0.1:{port}", HOST)
