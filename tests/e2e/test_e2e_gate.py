"""The test gate runs in the daemon for every entry point: a version whose tests fail is never released,
whether `POST /v1/deploy` comes from the CLI or from any other API client."""

from __future__ import annotations

import json

import httpx
import pytest
from e2e_kit import Sprout, edit_manifest

pytestmark = pytest.mark.slow


def test_a_failing_test_command_blocks_a_release_started_over_http(sprout: Sprout) -> None:
    sprout.up()
    sprout.wait_converged(timeout=60)
    serving = sprout.environment()["version"]
    edit_manifest(sprout.app_dir, 'name = "hello"\n', 'name = "hello"\ntest = "sh check.sh"\n')
    edit_manifest(sprout.app_dir, "-q hello", "-q hello && sh install.sh")
    # Like pip: many lines of install output before the tests run, which the report leaves out.
    (sprout.app_dir / "install.sh").write_text(
        'for i in $(seq 1 60); do echo "Collecting package-$i"; done\n'
    )
    (sprout.app_dir / "check.sh").write_text(
        "echo 'tests/test_cart.py F'\necho 'FAILED test_cart_total'\nexit 1\n"
    )
    assert "v2" in sprout.run("push", str(sprout.app_dir)).stdout

    # Any API client, not the CLI: the daemon runs the gate before it starts anything.
    api = sprout.daemon()["api_url"]
    answer = httpx.post(
        f"{api}/v1/deploy",
        json={"app": "hello", "env": "production", "version": "v2", "user": "ci"},
        headers={"Authorization": f"Bearer {sprout.token()}"},
        timeout=300,
        trust_env=False,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert error["kind"] == "TestsFailed"
    log = sprout.home / "logs" / "test-hello-v2.log"
    first, *rest = error["error"].splitlines()
    assert first.startswith("hello v2: the app's tests failed (`sh check.sh` exited 1 after ")
    assert rest == [
        "  tests/test_cart.py F",
        "  FAILED test_cart_total",
        f"The whole run, install output included: {log}",
    ]
    assert "stdout: Collecting package-60\n" in log.read_text()

    # The CLI goes through the same gate and says the same.
    done = sprout.run("deploy", str(sprout.app_dir), "--version", "v2", check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: hello v2: the app's tests failed (`sh check.sh` exited 1 after ")

    history = json.loads(sprout.run("history", str(sprout.app_dir), "--json").stdout)
    blocked = [entry for entry in history if entry["action"] == "blocked"]
    assert len(blocked) == 2 and (blocked[0]["version"], blocked[0]["user"]) == ("v2", "ci")
    assert blocked[0]["diff_text"].startswith("blocked by tests: `sh check.sh` exited 1 after ")
    assert blocked[0]["diff_text"].endswith(f"s; not deployed (log: {log})")
    assert "blocked by tests" in sprout.run("history", str(sprout.app_dir)).stdout
    deployments = httpx.get(
        f"{api}/v1/deployments",
        headers={"Authorization": f"Bearer {sprout.token()}"},
        timeout=10,
        trust_env=False,
    ).json()["deployments"]
    assert [d for d in deployments if d["version"] == "v2"] == []
    environment = sprout.environment()
    assert environment["version"] == serving
    assert {i["version"] for i in environment["instances"]} == {serving}
    assert sprout.get("/").status_code == 200
