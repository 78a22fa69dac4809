"""`sprout apply`, `sprout health` and `sprout open` against a real fleet behind the router."""

from __future__ import annotations

import json
import re
import stat
import sys
import threading
from pathlib import Path

import httpx
import pytest
from e2e_kit import Sprout

pytestmark = pytest.mark.slow


def _traffic(sprout: Sprout, stop: threading.Event, counts: dict[str, int]) -> None:
    """GETs through the router until `stop`: three of the page for each miss (the app answers 404)."""
    with httpx.Client(timeout=5, trust_env=False, headers={"Host": "hello.localhost"}) as client:
        for n in range(20_000):
            if stop.is_set():
                return
            path = "/missing" if n % 4 == 3 else "/"
            status = client.get(f"http://127.0.0.1:{sprout.port}{path}").status_code
            counts[str(status)] = counts.get(str(status), 0) + 1
            stop.wait(0.005)


def test_apply_health_open_and_dashboard_on_a_live_fleet(sprout: Sprout, tmp_path: Path) -> None:
    # `apply` is `up` under the name Terraform users type.
    first = sprout.run("apply", str(sprout.app_dir), "--port", str(sprout.port))
    assert "2/2 healthy" in first.stdout
    instances = {i["id"]: i for i in sprout.environment()["instances"]}

    stop = threading.Event()
    counts: dict[str, int] = {}
    load = threading.Thread(target=_traffic, args=(sprout, stop, counts), daemon=True)
    load.start()
    try:
        result = sprout.run("health", "--json", "--window", "2")
        table = sprout.run("health", "--window", "1")
    finally:
        stop.set()
        load.join(10)
    report = json.loads(result.stdout)
    assert 1.9 <= report["window"] < 10
    assert report["router"] == "running"
    (env,) = report["environments"]
    assert (env["app"], env["env"], env["healthy"], env["desired"]) == ("hello", "production", 2, 2)
    assert {i["id"] for i in env["instances"]} == set(instances)
    for row in env["instances"]:
        assert (row["state"], row["health"], row["router_state"]) == ("running", "healthy", "healthy")
        assert row["zone"] == instances[row["id"]]["zone"]
        assert row["requests"] > 0, row  # least-outstanding balancing reaches both instances
    total = env["total"]
    assert total["requests"] == sum(row["requests"] for row in env["instances"])
    assert total["rps"] == pytest.approx(total["requests"] / report["window"], rel=0.01)
    # One request in four is a miss: the window's shares show it (loose bounds: windows cut anywhere).
    assert 60 <= total["percent"]["2xx"] <= 90
    assert 10 <= total["percent"]["4xx"] <= 40
    assert total["percent"]["2xx"] + total["percent"]["4xx"] == pytest.approx(100, abs=0.2)
    assert total["percent"]["5xx"] == 0
    assert 0 < total["p50_ms"] <= total["p99_ms"] < 1000
    assert counts.get("200", 0) > 0 and set(counts) <= {"200", "404"}
    # The table: one row per instance and a total.
    for instance_id in instances:
        assert instance_id in table.stdout
    assert "total" in table.stdout and "req/s" in table.stdout

    # `open --print` prints the URL; `open` hands it to the browser named by $BROWSER.
    printed = sprout.run("open", "--print")
    assert printed.stdout.strip() == f"http://hello.localhost:{sprout.port}/"
    seen = tmp_path / "browser.txt"
    browser = tmp_path / "browser.py"
    browser.write_text(f"import sys\nopen({str(seen)!r}, 'w').write(sys.argv[1])\n")
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    sprout.extra_env["BROWSER"] = f"{sys.executable} {browser} %s"
    opened = sprout.run("open")
    assert seen.read_text() == f"http://hello.localhost:{sprout.port}/"
    assert opened.stdout.splitlines()[0] == f"http://hello.localhost:{sprout.port}/"
    missing = sprout.run("open", "--env", "staging", check=False)
    assert missing.returncode == 2
    assert "hello/staging: no such environment" in missing.stderr

    # The dashboard: a one-time link signs a browser in; the page shows the fleet; the link is spent.
    link = sprout.run("dashboard", "--print").stdout.strip()
    assert link.startswith(sprout.daemon()["api_url"].rstrip("/") + "/dashboard/login?code=")
    with httpx.Client(trust_env=False, follow_redirects=True, timeout=10) as browser_session:
        page = browser_session.get(link)
        assert page.status_code == 200 and str(page.url).endswith("/dashboard")
        # The month's bill from the real state store: two instances running for some seconds already.
        for text in ("hello/production", "2/2 healthy", *instances, "this month so far", "autoscaling saved"):
            assert text in page.text, text
        # Billed from the first launch, seconds ago, not from the 1st of the month: nothing to speak of.
        fixed_peak = re.search(r"would have cost ([0-9.]+) ", page.text)
        assert fixed_peak is not None and float(fixed_peak.group(1)) < 0.01, fixed_peak
        assert browser_session.get(link).status_code == 401
    assert httpx.get(link.split("/login")[0], trust_env=False).status_code == 401  # no session, no page

    # Without a daemon there are no live figures: said plainly, exit 4 (a service is missing).
    sprout.run("down", str(sprout.app_dir), timeout=90)
    offline = sprout.run("health", check=False)
    assert offline.returncode == 4
    assert "the daemon is not running" in offline.stderr
