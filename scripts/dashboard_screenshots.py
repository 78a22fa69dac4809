"""Screenshots of the dashboard in headless Chromium: during a blue/green window, after a rollback, a log view.

Brings examples/hello up in a throwaway SPROUT_HOME with the blue/green strategy, deploys a second version
(the first stays warm for its rollback window), rolls back, and after each step signs a fresh headless
Chromium in with a one-time link and saves the page as PNG under --out. Everything it starts is stopped
with `sprout down` at the end.

    .venv/bin/python scripts/dashboard_screenshots.py [--out /tmp/sprout-shots] [--port 18741]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1400,1300",
    "--virtual-time-budget=4000",
]


def sprout(*args: str, env: dict[str, str]) -> str:
    """Run the CLI; its output, or exit with its error."""
    done = subprocess.run([sys.executable, "-m", "sprout", *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"sprout {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def shoot(env: dict[str, str], out: Path, path: str = "") -> None:
    """Sign a fresh headless Chromium in and save the dashboard (or `path` under it) as `out`."""
    link = sprout("dashboard", "--print", env=env).splitlines()[0]
    profile = tempfile.mkdtemp(prefix="sprout-chromium-")
    try:
        # The sign-in link redirects to the page; a second navigation in the same profile opens `path`.
        target = link if not path else link.split("/dashboard/login")[0] + path
        browser = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
        args = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}"]
        if path:
            # Sign in first (the cookie lands in the profile), then take the picture of `path`.
            subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", link],
                           capture_output=True, timeout=60)  # fmt: skip
        subprocess.run([*args, target], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print(f"saved {out}")


def main() -> int:
    """Up, deploy, screenshot, rollback, screenshot, log view, down."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/sprout-shots")
    parser.add_argument("--port", type=int, default=18741)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sprout-shots-"))
    work.chmod(0o755)
    app = work / "hello"
    shutil.copytree(REPO / "examples" / "hello", app)
    with open(app / "sprout.toml", "a", encoding="utf-8") as manifest:
        manifest.write('\n[deploy]\nstrategy = "bluegreen"\nrollback_window = "10m"\n')
    env = {**os.environ, "SPROUT_HOME": str(work / "home")}
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client() as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    client.get(
                        f"http://127.0.0.1:{args.port}/", headers={"Host": "hello.localhost"}, timeout=2
                    )
                time.sleep(0.05)

    try:
        sprout("up", str(app), "--port", str(args.port), env=env)
        loader = threading.Thread(target=traffic, daemon=True)
        loader.start()
        (app / "hello" / "__init__.py").write_text((app / "hello" / "__init__.py").read_text() + "\n# v2\n")
        print(sprout("deploy", str(app), env=env))
        time.sleep(6)
        shoot(env, out / "dashboard-bluegreen.png")
        print(sprout("rollback", str(app), env=env))
        time.sleep(6)
        shoot(env, out / "dashboard-rollback.png")
        instance = next(
            line.split()[0]
            for line in sprout("status", env=env).splitlines()
            if line.strip().startswith("i-")
        )
        shoot(env, out / "dashboard-logs.png", f"/dashboard/logs?instance={instance}")
    finally:
        stop.set()
        subprocess.run([sys.executable, "-m", "sprout", "down", str(app)], env=env)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
