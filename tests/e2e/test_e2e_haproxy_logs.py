"""The HAProxy engine's access log as a user gets it: successful requests in the access files (searched
by `sprout logs`, rotated, compressed), errors and slow requests indexed, through restarts of HAProxy, of
the daemon and of the shipper itself; and `--https-port` refused with the engine that has no HTTPS."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from e2e_kit import Sprout, alive

#: Access files rotated every ~20 KB (~150 lines): several rotations within the test.
ROTATE_MB = "0.02"
OK = 400


def _teach_errors(app: Path) -> None:
    """The hello app copy answers /ok* with 200, /boom* with 500 and /slow* with a 200 after 1.2 s."""
    source = app / "hello" / "__main__.py"
    text = source.read_text()
    old = '        elif self.path == "/":\n'
    assert old in text
    source.write_text(
        text.replace(
            old,
            '        elif self.path.startswith("/boom"):\n'
            '            self.send_body(500, "text/plain; charset=utf-8", "boom\\n")\n'
            '        elif self.path.startswith("/slow"):\n'
            "            __import__('time').sleep(1.2)\n"
            '            self.send_body(200, "text/plain; charset=utf-8", "slow\\n")\n'
            '        elif self.path == "/" or self.path.startswith("/ok"):\n',
        )
    )


def _router_rows(sprout: Sprout, grep: str) -> list[dict[str, Any]]:
    """The router lines the daemon answers for `grep` (id 0: from the access files; else indexed)."""
    response = httpx.get(
        sprout.daemon()["api_url"] + "/v1/logs",
        params={"source": "router", "grep": grep, "limit": "5000"},
        headers={"Authorization": f"Bearer {sprout.token()}"},
        trust_env=False,
        timeout=30,
    )
    response.raise_for_status()
    return list(response.json()["lines"])


def _send(client: httpx.Client, path: str, status: int) -> str:
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.text[:200])
    return response.headers["x-request-id"]


def _shipper_pid(sprout: Sprout) -> int:
    return int(sprout.router()["shipper"]["pid"])


def _wait_for(what: str, timeout: float, check: Any) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


@pytest.mark.slow
def test_haproxy_access_lines_reach_access_files_and_errors_the_index_through_restarts(
    sprout: Sprout,
) -> None:
    _teach_errors(sprout.app_dir)
    sprout.extra_env["SPROUT_ACCESS_ROTATE_MB"] = ROTATE_MB
    sprout.engine = "haproxy"
    sprout.up()
    sprout.wait_converged(60)
    mark = f"m{os.getpid()}"
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{sprout.port}",
        headers={"Host": "hello.localhost"},
        timeout=10,
        trust_env=False,
    )
    with client:
        for i in range(OK):
            _send(client, f"/ok-{mark}-{i}", 200)
        sent_at = time.monotonic()
        # `sprout logs --grep <path>` finds the last 200 from the access files within 2 s of the request.
        last = f"/ok-{mark}-{OK - 1}"
        while True:
            asked_at = time.monotonic()
            out = sprout.run("logs", str(sprout.app_dir), "--grep", last).stdout
            if last in out:
                break
            assert asked_at - sent_at < 10, "the last 200 never reached `sprout logs`"
        print(f"\n200 found by `sprout logs --grep` {asked_at - sent_at:.2f}s after the request")
        assert asked_at - sent_at <= 2.0
        assert " 200 " in out

        errors = {_send(client, f"/missing-{mark}-{i}", 404): f"/missing-{mark}-{i}" for i in range(5)}
        errors |= {_send(client, f"/boom-{mark}-{i}", 500): f"/boom-{mark}-{i}" for i in range(5)}
        slow = _send(client, f"/slow-{mark}", 200)

        # Every 200 once, from the access files (not indexed), across rotated and compressed files.
        rows = _wait_for(
            "all 200s searchable",
            10,
            lambda: (r := _router_rows(sprout, f"/ok-{mark}-")) and len(r) >= OK and r,
        )
        assert len(rows) == OK and all(r["id"] == 0 for r in rows), len(rows)
        assert {r["msg"].split()[1] for r in rows} == {f"hello.localhost/ok-{mark}-{i}" for i in range(OK)}
        access = sprout.home / "logs" / "access"
        # Rotated (at a batch's end, once past the size) and compressed by the daemon.
        _wait_for("a compressed rotated file", 10, lambda: sorted(access.glob("access-*.log.gz")))

        # Errors and the slow request are indexed (id > 0) once each, with status, path and request id.
        def indexed() -> list[dict[str, Any]]:
            found = _router_rows(sprout, mark)
            notable = [r for r in found if r["id"] > 0]
            return notable if len(notable) >= len(errors) + 1 else []

        notable = _wait_for("errors indexed", 10, indexed)
        assert len(notable) == len(errors) + 1, [r["msg"] for r in notable]
        for request_id, path in errors.items():
            row = next(r for r in notable if f"request_id={request_id}" in r["msg"])
            status = "404" if "missing" in path else "500"
            assert row["msg"].startswith(f"GET hello.localhost{path} {status} "), row["msg"]
        slow_row = next(r for r in notable if f"request_id={slow}" in r["msg"])
        assert " 200 " in slow_row["msg"] and float(slow_row["msg"].split("duration=")[1].split()[0]) >= 1.0

        # kill -9 of HAProxy: the daemon starts a new one; the shipper goes on; its lines still arrive.
        shipper = _shipper_pid(sprout)
        haproxy = int(sprout.router()["pid"])
        os.kill(haproxy, signal.SIGKILL)
        _wait_for("a new HAProxy", 60, lambda: _alive_router(sprout, haproxy))
        assert _shipper_pid(sprout) == shipper
        after_haproxy = _send(client, f"/ok-{mark}-after-haproxy", 200)
        boom = _send(client, f"/boom-{mark}-after-haproxy", 500)
        found = _wait_for(
            "lines after an HAProxy restart",
            10,
            lambda: (ids := _ids(sprout, f"-{mark}-after-haproxy")) and len(ids) >= 2 and ids,
        )
        assert found == {after_haproxy: 0, boom: 1}

        # kill -9 of the daemon: HAProxy and the shipper run on; a new daemon adopts both.
        haproxy = int(sprout.router()["pid"])
        os.kill(int(sprout.daemon()["pid"]), signal.SIGKILL)
        during = _send(client, f"/ok-{mark}-no-daemon", 200)
        sprout.run("daemon", "start")
        assert int(sprout.router()["pid"]) == haproxy and _shipper_pid(sprout) == shipper
        _wait_for("a line sent without a daemon", 10, lambda: _ids(sprout, f"/ok-{mark}-no-daemon"))
        assert _ids(sprout, f"/ok-{mark}-no-daemon") == {during: 0}

        # kill -9 of the shipper: the lines HAProxy logs once it is gone wait in its ring for the next one.
        # (What the dead one had received but not yet written, at most one batch, is lost with it.)
        os.kill(shipper, signal.SIGKILL)
        _wait_for("the shipper gone", 10, lambda: not alive([shipper]))
        waited = {_send(client, f"/ok-{mark}-no-shipper-{i}", 200) for i in range(50)}
        waited.add(_send(client, f"/boom-{mark}-no-shipper", 500))
        _wait_for("a new shipper", 30, lambda: _shipper_pid(sprout) != shipper)
        found = _wait_for(
            "the lines written without a shipper",
            10,
            lambda: (ids := _ids(sprout, f"-{mark}-no-shipper")) and len(ids) >= 51 and ids,
        )
        assert set(found) == waited and sum(found.values()) == 1, found

    new_shipper = _shipper_pid(sprout)
    sprout.run("down", str(sprout.app_dir))
    assert not psutil.pid_exists(new_shipper)


def _alive_router(sprout: Sprout, old_pid: int) -> bool:
    try:
        return int(sprout.router()["pid"]) != old_pid and sprout.get("/").status_code == 200
    except (httpx.HTTPError, KeyError, ValueError):
        return False


def _ids(sprout: Sprout, grep: str) -> dict[str, int]:
    """Request id → 1 if indexed, 0 if from the access files, for the router lines matching `grep`."""
    found = {}
    for row in _router_rows(sprout, grep):
        request_id = row["msg"].split("request_id=")[1].split()[0]
        assert request_id not in found, f"{request_id} twice"
        found[request_id] = 1 if row["id"] > 0 else 0
    return found


def test_https_port_with_the_haproxy_engine_exits_2_naming_the_default_engine(sprout: Sprout) -> None:
    result = sprout.run(
        "up", str(sprout.app_dir), "--engine", "haproxy", "--https-port", "8443", check=False, timeout=60
    )
    assert result.returncode == 2, result
    said = result.stdout + result.stderr
    assert "--https-port" in said and "HAProxy engine" in said and "--engine sprout" in said, said
    # Nothing was saved or started: the next `up` is the default engine.
    assert not (sprout.home / "run" / "router.json").exists()
    assert not (sprout.home / "run" / "daemon.json").exists()
