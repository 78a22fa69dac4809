"""A failed test gate shows the tests' own output first, keeps the install output in a log file, and is
recorded in the history as blocked by tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sprout.paths import Home
from sprout.spec import load_manifest
from sprout.state import StateStore


def sprout(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home), "COLUMNS": "300"}
    env.pop("SPROUT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_a_blocked_release_shows_the_tests_first_and_is_in_the_history(tmp_path: Path) -> None:
    home, app = Home(tmp_path / "home").ensure(), tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_text(
        '[app]\nname = "shop"\nweb = "true"\ninstall = "sh install.sh"\ntest = "sh check.sh"\n'
    )
    # Like pip: many lines of install output before the tests run.
    (app / "install.sh").write_text('for i in $(seq 1 60); do echo "Collecting package-$i"; done\n')
    (app / "check.sh").write_text("echo 'tests/test_cart.py F'\necho 'FAILED test_cart_total'\nexit 1\n")
    state = StateStore(home.state_db)
    try:
        state.upsert_environment("shop", "production", load_manifest(app), app)
    finally:
        state.close()
    done = sprout("deploy", str(app), home=home.root, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    log = home.logs / "test-shop-v1.log"
    first, *rest = done.stderr.splitlines()
    assert first.startswith("error: shop v1: the app's tests failed (`sh check.sh` exited 1 after ")
    assert first.endswith("s); not deployed. Their last lines:")
    assert rest == [
        "  tests/test_cart.py F",
        "  FAILED test_cart_total",
        f"The whole run, install output included: {log}",
    ]
    assert "Collecting package-60" not in done.stderr
    kept = log.read_text()
    assert "stdout: Collecting package-1\n" in kept and "stdout: FAILED test_cart_total\n" in kept
    history = json.loads(sprout("history", str(app), "--json", home=home.root, cwd=tmp_path).stdout)
    blocked = [entry for entry in history if entry["action"] == "blocked"]
    assert len(blocked) == 1 and blocked[0]["version"] == "v1" and blocked[0]["user"]
    assert blocked[0]["diff_text"].startswith("blocked by tests: `sh check.sh` exited 1 after ")
    assert blocked[0]["diff_text"].endswith(f"s; not deployed (log: {log})")
    table = sprout("history", str(app), home=home.root, cwd=tmp_path).stdout
    assert "blocked by tests" in table
