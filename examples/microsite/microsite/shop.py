"""The shop's data operations: catalogue reads, the cart's contents, and checkout that never oversells."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from microsite.db import order_items, orders, products

CHECKOUT_ATTEMPTS = 3


class SoldOut(Exception):
    """A product in the cart does not have the quantity asked for."""

    def __init__(self, name: str, wanted: int) -> None:
        super().__init__(f"{name} is sold out (you asked for {wanted})")
        self.name = name
        self.wanted = wanted


@dataclass(frozen=True)
class Line:
    """One product in a cart."""

    product: dict[str, Any]
    quantity: int

    @property
    def total_cents(self) -> int:
        """Price of the line."""
        return int(self.product["price_cents"]) * self.quantity


def list_products(engine: sa.Engine) -> list[dict[str, Any]]:
    """The catalogue, in display order."""
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(products).order_by(products.c.id))]


def get_product(engine: sa.Engine, slug: str) -> dict[str, Any] | None:
    """One product by slug, or None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(products).where(products.c.slug == slug)).first()
    return dict(row._mapping) if row else None


def cart_lines(engine: sa.Engine, cart: dict[str, int]) -> list[Line]:
    """The cart's products (unknown ids are dropped), in catalogue order."""
    ids = [int(pid) for pid in cart]
    if not ids:
        return []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(products).where(products.c.id.in_(ids)).order_by(products.c.id))
        return [Line(dict(r._mapping), int(cart[str(r.id)])) for r in rows]


def place_order(engine: sa.Engine, cart: dict[str, int], instance: str) -> str:
    """Create an order for the cart and take its stock in one transaction; return the order code.

    Each product's stock is taken with a conditional UPDATE (`stock >= n`) whose row count says whether it
    succeeded, so concurrent checkouts can never sell more than there is, on SQLite, MySQL or PostgreSQL.
    Raises SoldOut (nothing changed) when any line cannot be served.
    """
    attempt = 1
    while True:
        try:
            return _place_order_once(engine, cart, instance)
        except OperationalError:
            # Deadlocks and lock timeouts roll the whole transaction back, so a retry is safe.
            if attempt == CHECKOUT_ATTEMPTS:
                raise
            time.sleep(0.05 * attempt)
            attempt += 1


def _place_order_once(engine: sa.Engine, cart: dict[str, int], instance: str) -> str:
    code = secrets.token_hex(5).upper()
    with engine.begin() as conn:
        # Lock rows in id order so two carts with the same products cannot deadlock each other.
        wanted = sorted((int(pid), int(qty)) for pid, qty in cart.items() if int(qty) > 0)
        info = {
            r.id: r
            for r in conn.execute(
                sa.select(products.c.id, products.c.name, products.c.price_cents).where(
                    products.c.id.in_([pid for pid, _ in wanted])
                )
            )
        }
        total = 0
        for pid, qty in wanted:
            taken = conn.execute(
                products.update()
                .where(products.c.id == pid, products.c.stock >= qty)
                .values(stock=products.c.stock - qty)
            )
            if pid not in info or taken.rowcount != 1:
                raise SoldOut(info[pid].name if pid in info else f"product {pid}", qty)
            total += info[pid].price_cents * qty
        order_id = conn.execute(
            orders.insert().values(
                code=code,
                total_cents=total,
                created_at=datetime.now(UTC).replace(tzinfo=None),
                instance=instance,
            )
        ).inserted_primary_key[0]
        conn.execute(
            order_items.insert(),
            [
                {
                    "order_id": order_id,
                    "product_id": pid,
                    "quantity": qty,
                    "price_cents": info[pid].price_cents,
                }
                for pid, qty in wanted
            ],
        )
    return code


def get_order(engine: sa.Engine, code: str) -> dict[str, Any] | None:
    """An order with its lines, or None."""
    with engine.connect() as conn:
        order = conn.execute(sa.select(orders).where(orders.c.code == code)).first()
        if order is None:
            return None
        lines = conn.execute(
            sa.select(products.c.name, order_items.c.quantity, order_items.c.price_cents)
            .join(products, products.c.id == order_items.c.product_id)
            .where(order_items.c.order_id == order.id)
            .order_by(products.c.id)
        )
        return dict(order._mapping) | {"lines": [dict(r._mapping) for r in lines]}


def ping(engine: sa.Engine) -> None:
    """Raise unless the database answers."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
