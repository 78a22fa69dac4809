"""The test gate runs a version's own tests against its real bundle, isolated from the serving folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sprout.bundle import FolderStore, pack
from sprout.deploy.gate import GateResult, run_test_gate
from sprout.errors import ManifestError
from sprout.services.database import database_url, drop_database, ensure_database
from sprout.spec import Manifest, parse_manifest


def push(tmp_path: Path, test: str | None) -> tuple[str, FolderStore]:
    app = tmp_path / "src"
    app.mkdir()
    (app / "check.sh").write_text(
        'echo "running checks in $SPROUT_ENV for $SPROUT_VERSION"\n'
        'echo "db=$DATABASE_URL"\n'
        "touch written-by-tests\n"
        'test -f marker.txt || { echo "marker.txt missing" >&2; exit 3; }\n'
    )
    (app / "sprout.toml").write_text('[app]\nname = "gated"\nweb = "true"\n')
    if test is not None:
        (app / "marker.txt").write_text("ok\n")
    packed = pack(app, tmp_path / "out")
    store = FolderStore(tmp_path / "artifacts")
    return store.put(packed.path), store


def gate(
    tmp_path: Path,
    sha: str,
    store: FolderStore,
    test: str | None,
    manifest: Manifest | None = None,
    server_url: str | None = None,
) -> GateResult:
    manifest = manifest or parse_manifest(
        {"app": {"name": "gated", "web": "true", **({"test": test} if test else {})}}
    )
    return run_test_gate(
        app="gated",
        version="v1",
        sha256=sha,
        store_url=store.url,
        cache_dir=tmp_path / "cache",
        manifest=manifest,
        environ=dict(os.environ),
        server_url=server_url,
    )


def test_passing_tests_open_the_gate(tmp_path: Path) -> None:
    sha, store = push(tmp_path, "sh check.sh")
    result = gate(tmp_path, sha, store, "sh check.sh")
    assert result.passed and result.code == 0
    assert "running checks in test for v1" in result.tail
    assert any(line.startswith("db=sqlite:///") for line in result.tail)
    # the tests ran in a copy: the folder instances serve from is untouched
    assert not (tmp_path / "cache" / sha / "app" / "written-by-tests").exists()


def test_failing_tests_close_the_gate_with_the_output_tail(tmp_path: Path) -> None:
    sha, store = push(tmp_path, None)
    result = gate(tmp_path, sha, store, "sh check.sh")
    assert not result.passed
    assert result.code == 3
    assert result.tail[-1] == "marker.txt missing"


def test_no_test_command_is_said_plainly(tmp_path: Path) -> None:
    sha, store = push(tmp_path, None)
    result = gate(tmp_path, sha, store, None)
    assert result.passed and result.skipped == "the manifest has no [app] test command"


SERVERS = {
    "mysql": (
        "mysql://root@127.0.0.1:3306/gated",
        'mysql -h 127.0.0.1 -u root -N -e "CREATE TABLE t (id INT) ENGINE=InnoDB; SELECT DATABASE()" "$DB"',
    ),
    "postgres": (
        "postgres://postgres@127.0.0.1:5432/gated",
        'psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "CREATE TABLE t (id SERIAL); SELECT current_database()"',
    ),
}


@pytest.mark.parametrize("engine", sorted(SERVERS))
def test_the_gate_can_test_against_a_scratch_database_on_the_apps_server(tmp_path: Path, engine: str) -> None:
    url, client = SERVERS[engine]
    app = tmp_path / "src"
    app.mkdir()
    (app / "check.sh").write_text(
        "DB=$(python -c \"import os, urllib.parse as u; print(u.urlsplit(os.environ['DATABASE_URL']).path[1:])\")\n"
        f"{client}\n"
    )
    (app / "sprout.toml").write_text('[app]\nname = "gated"\nweb = "true"\n')
    store = FolderStore(tmp_path / "artifacts")
    sha = store.put(pack(app, tmp_path / "out").path)
    manifest = parse_manifest(
        {
            "app": {"name": "gated", "web": "true", "test": "sh check.sh"},
            "deploy": {"test_database": "scratch"},
            "resources": {"database": {"engine": engine, "url": url}},
        }
    )
    result = gate(tmp_path, sha, store, None, manifest, database_url(engine, url, tmp_path))
    assert result.passed, result.tail
    scratch = result.tail[-1]
    assert scratch.startswith("gated_test_"), result.tail
    # Dropped after the run: creating it again creates it.
    again = f"{url.rsplit('/', 1)[0]}/{scratch}"
    assert ensure_database(again)
    drop_database(again)


def test_a_scratch_test_database_needs_a_database_server() -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest({"app": {"name": "gated", "web": "true"}, "deploy": {"test_database": "scratch"}})
    assert 'deploy.test_database = "scratch" needs [resources.database] on a MySQL or PostgreSQL' in str(
        raised.value
    )
