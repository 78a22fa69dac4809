import sqlite3

import click
from flask import current_app, g


def path_from_url(url, default):
    """The file of a `sqlite:////abs/path` DATABASE_URL; `default` when there is none (local runs)."""
    if not url:
        return default
    if not url.startswith("sqlite:///"):
        raise RuntimeError(f"DATABASE_URL {url!r} is not a SQLite URL")
    return url[len("sqlite:///") :]


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(current_app.config["DATABASE"], detect_types=sqlite3.PARSE_DECLTYPES)
        g.db.row_factory = sqlite3.Row
    return g.db


def close_db(e=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db():
    db = get_db()
    with current_app.open_resource("schema.sql") as f:
        db.executescript(f.read().decode("utf8"))


@click.command("init-db")
def init_db_command():
    """Clear the existing data and create new tables."""
    init_db()
    click.echo("Initialized the database.")


@click.command("ensure-db")
def ensure_db_command():
    """Ported (step 3): create the tables only when they are missing; the release command of every deploy."""
    found = (
        get_db().execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'post'").fetchone()
    )
    if found is None:
        init_db()
        click.echo("Initialized the database.")
    else:
        click.echo("The database is already initialized.")


def init_app(app):
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
    app.cli.add_command(ensure_db_command)
