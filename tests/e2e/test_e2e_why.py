"""Say why: a wrong health path fails `up` fast with the path and the code; a taken port is one line, exit 2."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from datetime import datetime
from typing import Any

import httpx
import psutil
import pytest
from e2e_kit import Sprout, edit_manifest

from loopback import free_port

pytestmark = pytest.mark.slow

#: Issue 21's bound for `up` on a health path that answers 404.
WRONG_PATH_BOUND = 45.0
WRONG_PATH_ERROR = (
    "error: hello/production: every health check of GET /nope answered 404 for 3 intervals: the path is "
    "wrong, not slow; set [health] path in sprout.toml to a path the app answers with 2xx/3xx (or make "
    "the app answer this one) and try again\n"
)


def test_a_health_path_answering_404_fails_up_fast_naming_path_and_code(sprout: Sprout) -> None:
    edit_manifest(sprout.app_dir, 'path = "/healthz"', 'path = "/nope"')
    started = time.monotonic()
    result = sprout.run("up", str(sprout.app_dir), "--port", str(sprout.port), check=False, timeout=90)
    took = time.monotonic() - started
    print(f"up on a 404 health path failed after {took:.1f}s")
    assert took < WRONG_PATH_BOUND, took
    assert result.returncode == 4, result.stderr
    assert result.stderr == WRONG_PATH_ERROR

    # `status` shows each instance's last check, in words and in the JSON document.
    instances = sprout.environment()["instances"]
    assert instances
    for instance in instances:
        check = instance["check"]
        assert (check["path"], check["status"], check["ok"], check["error"]) == ("/nope", 404, False, None)
        assert check["repeats"] >= 3 and check["latency_ms"] >= 0
    text = sprout.run("status").stdout
    for instance in instances:
        assert f"  {instance['id']} last check: GET /nope answered 404 in " in text
    # The events say it too, once per instance and outcome.
    events = _events(sprout)
    failed = [e["message"] for e in events if e["kind"] == "instance.check_failed"]
    for instance in instances:
        mine = [m for m in failed if m.startswith(f"{instance['id']}: ")]
        assert len(mine) == 1, failed
        assert mine[0].startswith(f"{instance['id']}: health check failed: GET /nope answered 404 in ")
    # The dashboard's instance rows carry it.
    link = sprout.run("dashboard", "--print").stdout.strip()
    with httpx.Client(trust_env=False, follow_redirects=True, timeout=10) as browser_session:
        page = browser_session.get(link).text
    for instance in instances:
        assert instance["id"] in page
    assert page.count('<span class="bad">last check: GET /nope answered 404 in ') == len(instances)


def test_a_crash_looping_environment_backs_off_and_says_so(sprout: Sprout) -> None:
    edit_manifest(sprout.app_dir, 'web = "python -m hello"', "web = \"python -c 'raise SystemExit(3)'\"")
    result = sprout.run("up", str(sprout.app_dir), "--port", str(sprout.port), check=False)
    assert result.returncode == 4, result.stderr
    assert "instances failed before any became healthy" in result.stderr

    def failing() -> dict[str, Any] | None:
        found: dict[str, Any] | None = sprout.environment()["failing"]
        return found

    first = failing()
    assert first is not None and first["failures"] >= 3
    # Launches wait longer after each round of failures (1 s, doubling, up to 30 s).
    deadline = time.monotonic() + 30
    while (failing() or {}).get("retry_every", 0) < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    later = failing()
    assert later is not None and later["since"] == first["since"] and later["retry_every"] >= 4, later
    since = datetime.fromtimestamp(later["since"]).strftime("%H:%M:%S")
    text = sprout.run("status").stdout
    line = next(line for line in text.splitlines() if line.startswith("failing since "))
    assert re.fullmatch(
        rf"failing since {since} \(\d+ instances failed\), retrying every [\d.]+s; `sprout down` stops it",
        line,
    ), line
    # `sprout down` stops it.
    sprout.run("down", str(sprout.app_dir))
    assert sprout.status()["environments"] == []


def test_a_release_whose_health_path_answers_404_is_aborted_naming_path_and_code(sprout: Sprout) -> None:
    sprout.up()
    # Version 2 moved its health page: /healthz now answers 404.
    code = sprout.app_dir / "hello" / "__main__.py"
    code.write_text(code.read_text().replace('self.path == "/healthz"', 'self.path == "/health"'))
    started = time.monotonic()
    result = sprout.run("deploy", str(sprout.app_dir), check=False)
    print(
        f"deploy of a version answering 404 on its health path failed after {time.monotonic() - started:.1f}s"
    )
    assert result.returncode == 4, result.stderr
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith("error: hello/production: release 1 aborted in ")
    assert first_line.endswith(
        ": new instances failed the health check /healthz: every health check of GET /healthz answered 404 for "
        "3 intervals: the path is wrong, not slow; set [health] path in sprout.toml to a path the app "
        "answers with 2xx/3xx (or make the app answer this one) and try again"
    )
    # The version that served before still serves, at full strength again.
    assert sprout.get().status_code == 200
    assert {i["version"] for i in sprout.wait_converged(60)["instances"]} == {"v1"}


def test_a_port_held_by_another_program_is_one_line_exit_2_and_nothing_saved(sprout: Sprout) -> None:
    sprout.up()
    assert sprout.router()["port"] == sprout.port
    sprout.run("down", str(sprout.app_dir))

    held = socket.socket()
    held.bind(("127.0.0.1", free_port()))
    held.listen(8)
    taken = held.getsockname()[1]
    try:
        result = sprout.run("up", str(sprout.app_dir), "--port", str(taken), check=False)
    finally:
        held.close()
    assert result.returncode == 2, result.stderr
    me = psutil.Process(os.getpid()).name()
    assert result.stderr == (
        f"error: router: port {taken} is already in use by {me} (pid {os.getpid()}); stop that program "
        "or pick another port with `sprout up --port N`\n"
    )
    assert "Traceback" not in result.stdout + result.stderr
    # Nothing saved: the recorded port is still the previous one, and nothing of this home runs.
    assert sprout.router()["port"] == sprout.port and "pid" not in sprout.router()
    assert not sprout.status()["daemon"]["running"]

    # A plain `up` uses the saved (previous) port.
    again = sprout.run("up", str(sprout.app_dir))
    assert f"URL: http://hello.localhost:{sprout.port}/" in again.stdout
    assert sprout.get().status_code == 200
    assert sprout.router()["port"] == sprout.port


def _events(sprout: Sprout) -> list[dict[str, object]]:
    api = sprout.daemon()["api_url"]
    answer = httpx.get(
        f"{api}/v1/events",
        params={"app": "hello", "env": "production", "limit": "200"},
        headers={"Authorization": f"Bearer {sprout.token()}"},
        timeout=10,
        trust_env=False,
    )
    answer.raise_for_status()
    return list(json.loads(answer.text)["events"])


def test_an_app_that_never_listens_on_its_port_is_told_to_bind_port(sprout: Sprout) -> None:
    edit_manifest(sprout.app_dir, 'web = "python -m hello"', 'web = "sleep 600"')
    edit_manifest(sprout.app_dir, 'path = "/healthz"', 'path = "/healthz"\ngrace = "3s"')
    result = sprout.run("up", str(sprout.app_dir), "--port", str(sprout.port), check=False)
    assert result.returncode == 4, result.stderr
    text = " ".join(result.stderr.split())
    assert "nothing listens on the instances' ports: does the web command bind $HOST and $PORT" in text, text
    sprout.run("down", str(sprout.app_dir))
