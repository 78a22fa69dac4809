"""docs/porting.md holds: flaskr, ported by its steps, keeps its SQLite data across releases and a rollback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_kit import Sprout, private_sprout

from sprout.paths import Home

FLASKR = Path(__file__).resolve().parent / "apps" / "flaskr"
HOST = "flaskr.localhost"


@pytest.fixture
def flaskr(tmp_path: Path) -> Iterator[Sprout]:
    """A private Sprout with a copy of the ported flaskr; everything it started is stopped at the end."""
    app = tmp_path / "app"
    shutil.copytree(FLASKR, app, ignore=shutil.ignore_patterns("__pycache__", "instance"))
    with private_sprout(app, tmp_path / "home") as sprout:
        yield sprout


def _posts(sprout: Sprout) -> tuple[str, list[str]]:
    response = sprout.get("/", host=HOST)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["version"], body["posts"]


def _create(sprout: Sprout, title: str) -> None:
    response = httpx.post(
        f"http://127.0.0.1:{sprout.port}/create",
        data={"title": title},
        headers={"Host": HOST},
        timeout=5,
        trust_env=False,
    )
    assert response.status_code == 200, response.text


def _new_code(sprout: Sprout, label: str) -> None:
    """A code-only change (a comment), so the next deploy is a new version."""
    with open(sprout.app_dir / "flaskr" / "__init__.py", "a", encoding="utf-8") as source:
        source.write(f"# {label}\n")


@pytest.mark.slow
def test_ported_flaskr_keeps_its_data_across_three_releases_and_a_rollback(flaskr: Sprout) -> None:
    flaskr.up()
    assert _posts(flaskr) == ("v1", [])
    _create(flaskr, "first")

    for version, title in (("v2", "second"), ("v3", "third")):
        _new_code(flaskr, version)
        flaskr.run("deploy", str(flaskr.app_dir))
        served, posts = _posts(flaskr)
        assert served == version
        # The release ran `ensure-db` against the same database: nothing was dropped.
        assert posts == ["first", "second", "third"][: len(posts)] and len(posts) == int(version[1:]) - 1
        _create(flaskr, title)

    flaskr.run("rollback", str(flaskr.app_dir))
    assert _posts(flaskr) == ("v2", ["first", "second", "third"])

    # The data lives in the environment's folder, not in any version's (replaced) app folder.
    database = Path(Home(flaskr.home).app_data_dir("flaskr", "production")) / "database.sqlite3"
    assert database.stat().st_size > 0
    assert not list(Home(flaskr.home).cache.glob("*/app/instance/flaskr.sqlite"))
