"""The shop as a visitor sees it: catalogue, cart, checkout, orders, health, headers and caching."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from microsite import shop
from microsite.app import create_app
from microsite.catalog import PRODUCTS
from microsite.config import Settings
from microsite.db import orders, products
from starlette.testclient import TestClient

JSON = {"accept": "application/json"}


def _product(engine: sa.Engine, slug: str) -> sa.Row:
    with engine.connect() as conn:
        return conn.execute(sa.select(products).where(products.c.slug == slug)).one()


def test_catalogue_lists_every_product_with_the_instance_in_the_footer(settings: Settings) -> None:
    response = TestClient(create_app(settings)).get("/")
    assert response.status_code == 200
    assert all(str(p["name"]).replace("'", "&#39;") in response.text for p in PRODUCTS)
    assert "served by instance <strong>i-test-1</strong> in zone <strong>a</strong>" in response.text
    assert "version <strong>v-test</strong>" in response.text


def test_every_response_names_its_version_and_instance(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    for path in ("/", "/healthz", "/no-such-page", "/static/style.css"):
        headers = client.get(path).headers
        assert headers["x-sprout-version"] == "v-test"
        assert headers["x-sprout-instance"] == "i-test-1"


def test_static_assets_are_publicly_cacheable(settings: Settings) -> None:
    response = TestClient(create_app(settings)).get("/static/style.css")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=3600"


def test_product_page_and_unknown_product(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    assert "Signed Match Ball" in client.get("/products/signed-ball").text
    assert client.get("/products/nope").status_code == 404


def test_add_to_cart_then_checkout_takes_stock_and_confirms(settings: Settings, engine: sa.Engine) -> None:
    client = TestClient(create_app(settings))
    scarf = _product(engine, "scarf")
    response = client.post("/cart/add", data={"product_id": scarf.id, "quantity": 2})
    assert response.status_code == 200 and "Supporters&#39; Scarf" in response.text  # followed to /cart
    assert client.get("/cart", headers=JSON).json() == {"lines": {str(scarf.id): 2}, "total": 2 * 2499}

    response = client.post("/checkout")
    assert response.status_code == 200
    assert "is confirmed" in response.text and "€49.98" in response.text
    assert _product(engine, "scarf").stock == scarf.stock - 2
    assert client.get("/cart", headers=JSON).json()["lines"] == {}


def test_the_cart_follows_the_visitor_to_another_instance(settings: Settings, engine: sa.Engine) -> None:
    one = TestClient(create_app(settings))
    two = TestClient(create_app(dataclasses.replace(settings, instance="i-test-2", zone="b")))
    cap = _product(engine, "cap")
    one.post("/cart/add", data={"product_id": cap.id}, headers=JSON)
    two.cookies = one.cookies
    assert two.get("/cart", headers=JSON).json()["lines"] == {str(cap.id): 1}
    response = two.post("/checkout", headers=JSON)
    assert response.status_code == 201
    assert "i-test-2" in response.headers["x-sprout-instance"]


def test_asking_for_more_than_is_left_is_a_clear_409(settings: Settings, engine: sa.Engine) -> None:
    client = TestClient(create_app(settings))
    with engine.begin() as conn:
        conn.execute(products.update().where(products.c.slug == "signed-ball").values(stock=1))
    ball = _product(engine, "signed-ball")
    client.post("/cart/add", data={"product_id": ball.id, "quantity": 2})
    response = client.post("/checkout")
    assert response.status_code == 409
    assert "Signed Match Ball is sold out" in response.text
    assert client.post("/checkout", headers=JSON).json() == {
        "error": "sold_out",
        "product": "Signed Match Ball",
    }
    assert _product(engine, "signed-ball").stock == 1


def test_checkout_with_an_empty_cart(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    assert client.post("/checkout", headers=JSON).status_code == 400
    assert client.post("/checkout", follow_redirects=False).headers["location"] == "/cart"


def test_concurrent_checkouts_never_oversell(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(products.update().where(products.c.slug == "gloves").values(stock=5))
    gloves = _product(engine, "gloves")

    def buy(_: int) -> str:
        try:
            return shop.place_order(engine, {str(gloves.id): 1}, "i-test")
        except shop.SoldOut:
            return "sold out"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(buy, range(20)))
    assert sum(r != "sold out" for r in results) == 5
    assert _product(engine, "gloves").stock == 0
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(orders)).scalar() == 5


def test_health_and_readiness(settings: Settings) -> None:
    client = TestClient(create_app(settings))
    assert client.get("/healthz").json() == {"status": "ok", "instance": "i-test-1", "version": "v-test"}
    assert client.get("/readyz").json() == {"ready": True, "database": "ok", "sessions": "ok"}


def test_not_ready_when_the_session_store_is_unreachable(settings: Settings) -> None:
    broken = dataclasses.replace(settings, session_store_url="memcached://a=127.0.0.1:9")
    response = TestClient(create_app(broken)).get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"ready": False, "database": "ok", "sessions": "unreachable"}
