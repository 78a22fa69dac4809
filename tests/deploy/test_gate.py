"""The test gate runs a version's own tests against its real bundle, isolated from the serving folder."""

from __future__ import annotations

import os
from pathlib import Path

from sprout.bundle import FolderStore, pack
from sprout.deploy.gate import GateResult, run_test_gate
from sprout.spec import parse_manifest


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


def gate(tmp_path: Path, sha: str, store: FolderStore, test: str | None) -> GateResult:
    manifest = parse_manifest({"app": {"name": "gated", "web": "true", **({"test": test} if test else {})}})
    return run_test_gate(
        app="gated",
        version="v1",
        sha256=sha,
        store_url=store.url,
        cache_dir=tmp_path / "cache",
        manifest=manifest,
        environ=dict(os.environ),
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
