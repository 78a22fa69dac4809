"""The release command creates the schema and seeds the catalogue once; re-running it changes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from microsite.catalog import PRODUCTS
from microsite.db import engine_from_url, products
from microsite.migrate import migrate

APP_DIR = Path(__file__).resolve().parents[1]


def _stock(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {r.slug: r.stock for r in conn.execute(sa.select(products.c.slug, products.c.stock))}


def test_migrate_is_idempotent_and_keeps_sold_stock(database_url: str) -> None:
    engine = engine_from_url(database_url)
    try:
        assert len(migrate(engine)) == len(PRODUCTS)
        with engine.begin() as conn:
            conn.execute(products.update().where(products.c.slug == "scarf").values(stock=7))
        before = _stock(engine)
        assert migrate(engine) == []
        assert _stock(engine) == before and before["scarf"] == 7
    finally:
        engine.dispose()


def test_release_command_runs_twice(database_url: str) -> None:
    env = dict(os.environ, DATABASE_URL=database_url, PYTHONPATH=str(APP_DIR))
    for added in (len(PRODUCTS), 0):
        result = subprocess.run(
            [sys.executable, "-m", "microsite.migrate"], env=env, cwd=APP_DIR, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().endswith(f"{added} product(s) added")
