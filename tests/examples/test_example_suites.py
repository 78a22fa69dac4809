"""Issue test 5: each example's own suite (its manifest's `test` command) passes on MariaDB.

On SQLite the same suites run as part of the root test run (`testpaths` lists examples/*/tests)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tomllib

import pytest
from example_procs import EXAMPLES

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("app", ["microsite", "lottery"])
def test_the_manifest_test_command_passes_on_mariadb(app: str) -> None:
    manifest = tomllib.loads((EXAMPLES / app / "sprout.toml").read_text())
    command = manifest["app"]["test"].split()
    assert command[0] == "pytest"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # The suite makes and drops its own scratch database on this server, never touching `suite` itself.
    env["DATABASE_URL"] = "mysql://root@127.0.0.1:3306/suite"
    result = subprocess.run(
        [sys.executable, "-m", *command, "-p", "no:cacheprovider"],
        cwd=EXAMPLES / app,
        env=env,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout


@pytest.mark.skipif(shutil.which("php") is None, reason="php-cli is not installed")
def test_the_php_shop_test_command_passes_on_mariadb_with_php_alone() -> None:
    command = tomllib.loads((EXAMPLES / "phpshop" / "sprout.toml").read_text())["app"]["test"]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["DATABASE_URL"] = "mysql://root@127.0.0.1:3306/suite"
    result = subprocess.run(
        shlex.split(command), cwd=EXAMPLES / "phpshop", env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.endswith("9 passed, 0 failed\n"), result.stdout
