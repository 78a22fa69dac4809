"""The release command: create missing tables and seed missing products; safe to run on every deploy.

Run as ``python -m microsite.migrate`` with DATABASE_URL set.  Existing rows are never touched, so a
re-run (or a rollback's release) keeps the stock that has been sold.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

from microsite.catalog import DESCRIPTION, PRODUCTS
from microsite.config import Settings
from microsite.db import engine_from_url, metadata, products


def migrate(engine: sa.Engine) -> list[str]:
    """Bring the schema and catalogue up to date; return the slugs of products added."""
    metadata.create_all(engine, checkfirst=True)
    with engine.begin() as conn:
        present = set(conn.execute(sa.select(products.c.slug)).scalars())
        missing = [dict(p, description=DESCRIPTION) for p in PRODUCTS if p["slug"] not in present]
        if missing:
            conn.execute(products.insert(), missing)
    return [str(p["slug"]) for p in missing]


def main() -> int:
    """Migrate the database named by DATABASE_URL and say what changed."""
    settings = Settings.from_env()
    engine = engine_from_url(settings.database_url)
    try:
        added = migrate(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    print(f"microsite: schema up to date on {where}; {len(added)} product(s) added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
