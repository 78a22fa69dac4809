"""The node-loss sequence the shop examples must survive on `sprout up`: 20 carts, zone a's memcached node
killed (a), restarted by Sprout (b), then zone b's node killed (c); every cart intact at each step."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
from example_procs import EXAMPLES

from loopback import free_port

JSON = {"accept": "application/json"}
CARTS = 20
RESTART_TIMEOUT = 90.0


def sprout(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `sprout` CLI against `home`."""
    env = {**os.environ, "SPROUT_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], env=env, capture_output=True, text=True, timeout=400
    )


@contextmanager
def sprout_up(tmp_path: Path, example: str, database: str, mariadb_url: str) -> Iterator[tuple[Path, int]]:
    """`sprout up` a copy of `examples/<example>` on a scratch database (its manifest's `database` url
    replaced), autoscaling off; (home, router port). `sprout down` afterwards must name the memcached nodes."""
    app = tmp_path / example
    shutil.copytree(EXAMPLES / example, app, ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3*"))
    manifest = (app / "sprout.toml").read_text().replace(f'url = "{database}"', f'url = "{mariadb_url}"')
    (app / "sprout.toml").write_text(manifest + "\n[scaling]\nenabled = false\n")
    home, port = tmp_path / "home", free_port()
    try:
        result = sprout(home, "up", str(app), "--port", str(port))
        assert result.returncode == 0, result.stdout + result.stderr
        assert "2/2 healthy" in result.stdout
        yield home, port
    finally:
        down = sprout(home, "down", str(app))
        for proc in psutil.process_iter(["cmdline"]):
            if str(home) in " ".join(proc.info["cmdline"] or []):
                proc.kill()
    assert "memcached nodes (127.0.0.1:" in down.stdout, down.stdout + down.stderr


def session_nodes(home: Path, app: str) -> dict[str, dict[str, Any]]:
    """The managed memcached nodes `sprout status` lists for `app`, by zone."""
    status = json.loads(sprout(home, "status", "--json").stdout)
    env = next(e for e in status["environments"] if e["app"] == app)
    return {node["zone"]: node for node in env["session_nodes"]}


def open_carts(url: str, host: str) -> list[tuple[httpx.Client, dict[str, int]]]:
    """20 shoppers through the router, each with a cart of its own: (browser, expected lines)."""
    carts = []
    for i in range(CARTS):
        browser = httpx.Client(base_url=url, headers={"host": host, **JSON}, timeout=15)
        product, quantity = i % 20 + 1, i % 3 + 1
        added = browser.post("/cart/add", data={"product_id": product, "quantity": quantity})
        assert added.status_code == 200, added.text
        carts.append((browser, {str(product): quantity}))
    return carts


def assert_carts(carts: list[tuple[httpx.Client, dict[str, int]]], step: str) -> None:
    """Every cart read twice (the router alternates instances, so both zones read it) and intact."""
    lost = []
    for browser, lines in carts:
        for _ in range(2):
            cart = browser.get("/cart")
            if cart.status_code != 200 or cart.json()["lines"] != lines:
                lost.append((cart.status_code, cart.text[:80]))
    assert not lost, f"{step}: {len(lost)} of {2 * len(carts)} cart reads wrong: {lost[:3]}"


def kill_node(node: dict[str, Any]) -> None:
    """SIGKILL a memcached node by pid and wait until it is gone."""
    proc = psutil.Process(node["pid"])
    os.kill(node["pid"], signal.SIGKILL)
    proc.wait(10)


def wait_restarted(home: Path, app: str, zone: str, old_pid: int) -> dict[str, Any]:
    """Zone `zone`'s node once Sprout has restarted it (a new pid, running)."""
    deadline = time.monotonic() + RESTART_TIMEOUT
    while time.monotonic() < deadline:
        node = session_nodes(home, app)[zone]
        if node["running"] and node["pid"] != old_pid:
            return node
        time.sleep(0.5)
    raise AssertionError(f"zone {zone}'s memcached node was not restarted in {RESTART_TIMEOUT:.0f}s")


def survive_node_losses(home: Path, app: str, url: str, host: str) -> None:
    """The whole sequence: carts, (a) zone a down, (b) restarted, (c) zone b down."""
    nodes = session_nodes(home, app)
    assert sorted(nodes) == ["a", "b"] and all(n["running"] for n in nodes.values()), nodes
    carts = open_carts(url, host)
    try:
        assert_carts(carts, "before any loss")
        held = session_nodes(home, app)
        assert all(n["items"] >= CARTS for n in held.values()), held  # every cart is on both nodes
        kill_node(nodes["a"])
        assert_carts(carts, "(a) zone a's node down")
        back = wait_restarted(home, app, "a", nodes["a"]["pid"])
        assert back["port"] == nodes["a"]["port"] and back["items"] >= CARTS, back
        assert_carts(carts, "(b) zone a's node restarted by Sprout")
        kill_node(session_nodes(home, app)["b"])
        assert_carts(carts, "(c) zone b's node killed next")
    finally:
        for browser, _ in carts:
            browser.close()
