"""The lottery's data operations: enter once per email, count, close entries, draw, read the results."""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from lottery.db import entries, rounds
from lottery.migrate import ROUND
from lottery.verify import draw_winners, tickets_digest

ATTEMPTS = 5
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TICKET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: tickets get read aloud


class EntriesClosed(Exception):
    """The round no longer takes entries."""


class InvalidEmail(ValueError):
    """The email address cannot be right."""


class WrongState(Exception):
    """An admin action that the round's current state does not allow."""


@dataclass(frozen=True)
class Entry:
    """A ticket, and whether this call created it (False: the email had entered before)."""

    ticket: str
    new: bool


def normalise_email(email: str) -> str:
    """The email as stored: trimmed and lower-cased; raises InvalidEmail."""
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidEmail(f"{email!r} is not an email address")
    return email


def enter(engine: sa.Engine, email: str) -> Entry:
    """Give `email` its ticket: a new one, or the one it already has (a retried submit is harmless)."""
    email = normalise_email(email)
    for attempt in range(1, ATTEMPTS + 1):
        ticket = "XMAS-" + "".join(secrets.choice(_TICKET_ALPHABET) for _ in range(8))
        try:
            with engine.begin() as conn:
                # A shared lock on the round: closing waits for entries in flight, and they see it closed.
                status = conn.execute(
                    sa.select(rounds.c.status).where(rounds.c.id == ROUND).with_for_update(read=True)
                ).scalar_one()
                if status != "open":
                    raise EntriesClosed("entries are closed")
                conn.execute(entries.insert().values(ticket=ticket, email=email, created_at=_now()))
            return Entry(ticket, True)
        except IntegrityError:
            existing = _ticket_of(engine, email)
            if existing is not None:
                return Entry(existing, False)
            # The random ticket collided with another entrant's: draw a new one.
        except OperationalError:
            # InnoDB may pick a deadlock victim among concurrent inserts of one email; it rolled back.
            if attempt == ATTEMPTS:
                raise
            time.sleep(0.02 * attempt)
    raise RuntimeError(f"no free ticket after {ATTEMPTS} attempts")


def _ticket_of(engine: sa.Engine, email: str) -> str | None:
    with engine.connect() as conn:
        ticket: str | None = conn.execute(
            sa.select(entries.c.ticket).where(entries.c.email == email)
        ).scalar()
        return ticket


def count(engine: sa.Engine) -> int:
    """How many tickets there are."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(entries)).scalar_one())


def tickets(engine: sa.Engine) -> list[str]:
    """Every ticket, sorted (the public list the draw is computed from)."""
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(entries.c.ticket)).scalars())


def round_info(engine: sa.Engine) -> dict[str, Any]:
    """The round's public state: the seed only once it has been drawn."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(rounds).where(rounds.c.id == ROUND)).one()
    info = dict(row._mapping)
    if info["status"] != "drawn":
        info["seed"] = None
    info["winners"] = json.loads(info["winners"]) if info["winners"] else []
    return info


def close(engine: sa.Engine) -> dict[str, Any]:
    """Stop taking entries and publish the ticket list's digest."""
    with engine.begin() as conn:
        changed = conn.execute(
            rounds.update()
            .where(rounds.c.id == ROUND, rounds.c.status == "open")
            .values(status="closed", closed_at=_now())
        ).rowcount
        if changed != 1:
            raise WrongState("entries are already closed")
        listed = sorted(conn.execute(sa.select(entries.c.ticket)).scalars())
        conn.execute(
            rounds.update()
            .where(rounds.c.id == ROUND)
            .values(ticket_count=len(listed), tickets_digest=tickets_digest(listed))
        )
    return round_info(engine)


def draw(engine: sa.Engine) -> dict[str, Any]:
    """Close entries if still open, then reveal the seed and record the winners it picks."""
    if round_info(engine)["status"] == "open":
        close(engine)
    with engine.begin() as conn:
        row = conn.execute(sa.select(rounds).where(rounds.c.id == ROUND).with_for_update()).one()
        if row.status != "closed":
            raise WrongState("the draw has already taken place")
        listed = sorted(conn.execute(sa.select(entries.c.ticket)).scalars())
        winners = draw_winners(row.seed, listed, row.prizes)
        conn.execute(
            rounds.update()
            .where(rounds.c.id == ROUND)
            .values(status="drawn", drawn_at=_now(), winners=json.dumps(winners))
        )
    return round_info(engine)


def ping(engine: sa.Engine) -> None:
    """Raise unless the database answers."""
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
