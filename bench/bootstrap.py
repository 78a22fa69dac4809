"""Instance bootstrap figures: launch-to-healthy (first and cached) against the app's own start time.

For one app folder (default: examples/hello) in a throwaway SPROUT_HOME, this prints
  - app start-to-listen: the app's `web` command run directly (same interpreter, same folder, same
    environment) until its health path answers 200;
  - first launch-to-healthy: LocalProvider.launch of the first instance of the version (fetch, verify,
    unpack, venv, `install`) until the health path answers 200;
  - cached launch-to-healthy: later instances of the same version (install skipped);
and the ratio cached / app, against the target of 1.5. Each figure is the median of --runs runs.

    .venv/bin/python bench/bootstrap.py [--app examples/hello] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
POLL = 0.002
TIMEOUT = 120.0


def wait_healthy(port: int, path: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll GET http://127.0.0.1:port/path every 2 ms until it answers 200."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as response:
                if response.status == 200:
                    return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise SystemExit(f"the app exited with {proc.returncode} before answering") from None
        time.sleep(POLL)
    raise SystemExit(f"nothing answered on port {port} within {TIMEOUT}s")


def app_start(web: str, app_dir: Path, venv: Path, health: str, extra_env: dict[str, str]) -> float:
    """Seconds from starting the app's `web` command directly to its health path answering."""
    from sprout.agent.env import base_env
    from sprout.agent.supervise import shell_command
    from sprout.providers.local import free_port

    port = free_port()
    env = {**base_env(os.environ, venv), **extra_env, "HOST": "127.0.0.1", "PORT": str(port)}
    start = time.perf_counter()
    proc = subprocess.Popen(
        shell_command(web),
        cwd=app_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        process_group=0,
    )
    try:
        wait_healthy(port, health, proc)
        return time.perf_counter() - start
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def launch_to_healthy(provider: object, spec: object, health: str) -> tuple[float, float]:
    """Seconds from LocalProvider.launch to the health path answering, and to the agent starting `web`."""
    wall = time.time()
    start = time.perf_counter()
    provider.launch(spec, {})  # type: ignore[attr-defined]
    wait_healthy(spec.port, health)  # type: ignore[attr-defined]
    healthy = time.perf_counter() - start
    return healthy, _web_started(spec.log_file) - wall  # type: ignore[attr-defined]


def _web_started(log_file: str) -> float:
    """When the agent started `web`, from its log (the line may still be on its way to the file)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        with open(log_file, encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                if record["stream"] == "system" and record["msg"].startswith("web started"):
                    return float(record["ts"])
        time.sleep(0.01)
    raise SystemExit(f"{log_file}: no 'web started' line within {TIMEOUT}s")


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", type=Path, default=REPO / "examples" / "hello")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="extra app variables"
    )
    args = parser.parse_args()
    extra_env = dict(item.split("=", 1) for item in args.env)

    with tempfile.TemporaryDirectory(prefix="sprout-bench-") as tmp:
        os.environ["SPROUT_HOME"] = str(Path(tmp) / "home")
        from sprout.bundle import FolderStore, pack
        from sprout.paths import Home
        from sprout.providers.base import InstanceSpec
        from sprout.providers.local import LocalProvider, free_port
        from sprout.spec import load_manifest

        home = Home.from_env().ensure()
        manifest = load_manifest(args.app / "sprout.toml")
        health = manifest.health.path
        bundle = pack(args.app, Path(tmp) / "scratch")
        sha = FolderStore(home.artifacts).put(bundle.path)
        provider = LocalProvider(home)
        launched: list[str] = []

        def spec(n: int) -> InstanceSpec:
            instance_id = f"i-bench{n:05d}"
            launched.append(instance_id)
            return InstanceSpec(
                instance_id=instance_id,
                app=manifest.app.name,
                env="bench",
                version="v1",
                bundle_sha256=sha,
                store_url=home.artifacts.as_uri(),
                zone="ab"[n % 2],
                host="127.0.0.1",
                port=free_port(),
                web=manifest.app.web,
                install=manifest.app.install,
                health_path=health,
                log_file=str(home.instance_dir(instance_id) / "app.log"),
                cache_dir=str(home.cache),
                grace=5.0,
                env_vars={**manifest.env, **extra_env},
            )

        try:
            first, _ = launch_to_healthy(provider, spec(0), health)
            app_dir, venv = home.cache / sha / "app", home.cache / sha / "venv"
            cached, own, agent_cost = [], [], []
            # Interleaved, so both figures see the same machine load.
            for n in range(1, args.runs + 1):
                own.append(app_start(manifest.app.web, app_dir, venv, health, extra_env))
                healthy, to_web = launch_to_healthy(provider, spec(n), health)
                cached.append(healthy)
                agent_cost.append(to_web)
                # One instance at a time, like the direct runs: idle instances must not share the CPU.
                provider.stop(launched.pop(), grace=5.0)
        finally:
            for instance_id in launched:
                provider.stop(instance_id, grace=5.0)

    app_s, cached_s = statistics.median(own), statistics.median(cached)
    print(f"app: {args.app.name}  web: {manifest.app.web!r}  install: {manifest.app.install!r}")
    print(f"bundle: {bundle.size} bytes, {bundle.files} files; medians of {args.runs} runs")
    print(f"app start-to-listen (direct)     {app_s * 1000:8.1f} ms")
    print(f"first launch-to-healthy          {first * 1000:8.1f} ms   (fetch, verify, unpack, venv, install)")
    print(
        f"cached launch-to-healthy         {cached_s * 1000:8.1f} ms   (min {min(cached) * 1000:.1f}, max {max(cached) * 1000:.1f})"
    )
    print(
        f"  of which launch -> web started {statistics.median(agent_cost) * 1000:8.1f} ms   "
        "(provider + agent start, before the app runs)"
    )
    verdict = "meets" if cached_s <= 1.5 * app_s else "misses"
    print(f"cached / app                     {cached_s / app_s:8.2f} x   ({verdict} the 1.5x target)")


if __name__ == "__main__":
    sys.exit(main())
