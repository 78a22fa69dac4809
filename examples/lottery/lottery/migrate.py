"""The release command: create missing tables and, once, the round with its secret seed and commitment.

Run as ``python -m lottery.migrate`` with DATABASE_URL set.  Re-running it never touches an existing
round, so the published commitment stays the same across deploys.
"""

from __future__ import annotations

import os
import secrets
import sys

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from lottery.config import Settings
from lottery.db import engine_from_url, metadata, rounds
from lottery.verify import commitment

ROUND = 1


def migrate(engine: sa.Engine, prizes: int = 3) -> bool:
    """Bring the schema up to date and open the round if there is none; True if it was opened now."""
    metadata.create_all(engine, checkfirst=True)
    seed = secrets.token_hex(32)
    try:
        with engine.begin() as conn:
            if conn.execute(sa.select(rounds.c.id).where(rounds.c.id == ROUND)).first() is not None:
                return False
            conn.execute(
                rounds.insert().values(
                    id=ROUND, status="open", seed=seed, commitment=commitment(seed), prizes=prizes
                )
            )
    except IntegrityError:
        return False  # another release opened it at the same moment
    return True


def main() -> int:
    """Migrate the database named by DATABASE_URL and say what changed."""
    settings = Settings.from_env(os.environ)
    engine = engine_from_url(settings.database_url)
    try:
        opened = migrate(engine, settings.prizes)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    print(f"lottery: schema up to date on {where}; {'round opened' if opened else 'round unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
