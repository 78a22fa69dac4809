"""Benchmark Sprout's data plane against nginx, HAProxy and Caddy in front of two uvicorn backends.

Needs `wrk`, `nginx`, `haproxy` and `caddy` on PATH (Debian: `apt-get install wrk nginx haproxy caddy`);
installs nothing. Writes its configs under a /tmp folder, starts every process itself as the current user
on free loopback ports and kills each one by PID at the end.

    .venv/bin/python bench/router.py [--rounds 3] [--duration 10] [--workers 1] [--memory] [--profile]
                                     [--only direct,nginx,haproxy,caddy,router,stack,minimal]
    .venv/bin/python bench/router.py --instructions [--duration 10]   # needs valgrind

Contenders: `direct` (wrk straight at one backend), `nginx`, `haproxy`, `caddy` (one worker each, access
logs off), `router` (the bare `sprout router`, no access log) and `stack`: the platform as a user gets it,
`sprout up` of the same ASGI app as 2 uvicorn instances under a scratch SPROUT_HOME, with the router's
access log on and the daemon ingesting it. Prints req/s, p50, p99 (medians over the rounds) at -c64 and
-c256, CPU per request (psutil CPU times before/after; for `stack` the router plus the daemon, the
daemon's share shown apart), the ratios the acceptance asks for, and the load average. With --memory the
router's RSS after 1 M proxied requests and after a streamed 1 GiB upload. `minimal` is
`bench/minimal_proxy.py`, a featureless uvloop + httptools proxy: the floor of any Python proxy here.
With --instructions, only the router: its worker's instructions per request counted by callgrind, an
exact figure for telling a change apart where CPU time on a shared host varies by ±15 % run to run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

PY = sys.executable
TOKEN = "bench-token"


# -- the backend (run by this same file with --serve-backend) ---------------------------------------------
async def _app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    if scope["path"] == "/count":
        total = 0
        more = True
        while more:
            message = await receive()
            total += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = str(total).encode()
    else:
        body = b"hello from the backend\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def serve_backend(port: int) -> None:
    import uvicorn

    uvicorn.run(_app, host="127.0.0.1", port=port, loop="uvloop", http="httptools", log_level="warning",
                access_log=False, lifespan="off")  # fmt: skip


# -- helpers ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


class Processes:
    """Everything the bench started, killed by PID at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        with open(self.folder / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc)


def wrk(
    port: int, connections: int, duration: int, host: str = "", scheme: str = "http", close: bool = False
) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency"]
    if close:
        cmd += ["-H", "Connection: close"]
    if scheme == "https":
        # wrk sends the URL's host as SNI and Host: it must resolve to loopback (localhost does).
        url = f"https://{host or '127.0.0.1'}:{port}/"
    else:
        url = f"http://127.0.0.1:{port}/"
        if host:
            cmd += ["-H", f"Host: {host}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    lat = {m.group(1): _ms(m.group(2)) for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+\w+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockerr = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": lat["50"], "p99": lat["99"], "non2xx": float(errors.group(1)) if errors else 0.0,
            "sockerr": 1.0 if sockerr else 0.0}  # fmt: skip


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    assert m, value
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU time of a process and (nginx workers, the router's worker) its children, in seconds."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *(root.children(recursive=True) if children else [])]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def rss_mib(pid: int) -> tuple[float, float]:
    """Current and peak resident set size of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def admin_call(port: int, method: str, path: str, body: object = None, timeout: float = 10) -> object:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


# -- the contenders -----------------------------------------------------------------------------------------
def nginx_conf(
    folder: Path, port: int, backends: list[int], workers: int, tls: tuple[int, Path, Path, str] | None = None
) -> Path:
    """nginx in front of the backends on `port`; with `tls` (port, chain, key, ciphers) on HTTPS as well."""
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in backends)
    https = ""
    if tls is not None:
        https = (
            f"\n    listen 127.0.0.1:{tls[0]} ssl backlog=4096;\n    ssl_certificate {tls[1]};"
            f"\n    ssl_certificate_key {tls[2]};\n    ssl_protocols TLSv1.2 TLSv1.3;\n    ssl_ciphers {tls[3]};"
        )
    conf = folder / "nginx.conf"
    conf.write_text(f"""
worker_processes {workers};
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  upstream app {{
{servers}
    least_conn;
    keepalive 128;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;{https}
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
""")
    return conf


def haproxy_conf(folder: Path, port: int, backends: list[int], workers: int) -> Path:
    servers = "\n".join(f"  server b{i} 127.0.0.1:{p}" for i, p in enumerate(backends))
    conf = folder / "haproxy.cfg"
    conf.write_text(f"""
global
  nbthread {workers}
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend web
  bind 127.0.0.1:{port}
  default_backend app
backend app
  balance leastconn
{servers}
""")
    return conf


def caddy_conf(folder: Path, port: int, backends: list[int]) -> Path:
    upstreams = " ".join(f"127.0.0.1:{p}" for p in backends)
    conf = folder / "Caddyfile"
    conf.write_text(f"""
{{
  admin off
  auto_https off
  storage file_system {folder}/caddy
}}
http://127.0.0.1:{port} {{
  reverse_proxy {upstreams} {{
    lb_policy least_conn
  }}
}}
""")
    return conf


STACK_MANIFEST = """
[app]
name = "benchapp"
install = "pip install -q -r requirements.txt"
install_inputs = ["requirements.txt"]
web = "uvicorn app:app --host $HOST --port $PORT --loop uvloop --http httptools --no-access-log --log-level warning --lifespan off"

[health]
path = "/healthz"
interval = "2s"

[instances]
min = 2
max = 2
"""


class Stack:
    """`sprout up` of the bench's ASGI app (2 uvicorn instances) under a scratch SPROUT_HOME, logs on."""

    def __init__(self, folder: Path, engine: str = "sprout") -> None:
        self.engine = engine
        self.work = folder / "stack"
        self.home = self.work / "home"
        self.app = self.work / "app"
        self.port = free_port()

    def env(self) -> dict[str, str]:
        return {**os.environ, "SPROUT_HOME": str(self.home), "NO_COLOR": "1", "COLUMNS": "200"}

    def sprout(self, *args: str) -> str:
        result = subprocess.run([PY, "-m", "sprout", *args], env=self.env(), capture_output=True, text=True,
                                timeout=300, cwd=self.work)  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"sprout {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def up(self) -> tuple[int, int]:
        """Bring the app up; the pids of the data plane (the router's supervisor, or HAProxy) and the daemon."""
        self.app.mkdir(parents=True)
        # Under root the app runs as a user of its own, who must pass through to the home's app folders.
        for folder in (self.work.parent, self.work):
            folder.chmod(0o711)
        source = Path(__file__).read_text()
        start, end = source.index("# -- the backend"), source.index("def serve_backend")
        (self.app / "app.py").write_text(source[start:end].replace("_app", "app"))
        (self.app / "sprout.toml").write_text(STACK_MANIFEST)
        from importlib.metadata import version

        (self.app / "requirements.txt").write_text(
            "".join(f"{name}=={version(name)}\n" for name in ("uvicorn", "httptools", "uvloop"))
        )
        self.sprout("up", str(self.app), "--port", str(self.port), "--engine", self.engine)
        return self._pid("sprout.router" if self.engine == "sprout" else "haproxy"), self._pid(
            "sprout.controlplane"
        )

    def _pid(self, module: str) -> int:
        """The pid of the process running `module` or program `module` (the supervisor, not its workers)."""
        procs = []
        for proc in self.processes():
            cmdline = proc.cmdline()
            if module in cmdline or (cmdline and Path(cmdline[0]).name == module):
                procs.append(proc)
        pids = {p.pid for p in procs}
        roots = [p for p in procs if p.ppid() not in pids]
        if len(roots) != 1:
            raise RuntimeError(f"stack: expected one {module} process of {self.home}, found {roots}")
        return int(roots[0].pid)

    def processes(self) -> list[Any]:
        """Every live process of this stack (its SPROUT_HOME in their environment)."""
        import psutil

        found = []
        for proc in psutil.process_iter():
            try:
                if proc.pid != os.getpid() and proc.environ().get("SPROUT_HOME") == str(self.home):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def down(self) -> None:
        """`sprout down` and the daemon stopped, then anything of this home still alive killed by pid."""
        import psutil

        if not self.home.exists():
            return
        for args in (("down", str(self.app)), ("daemon", "stop")):
            try:
                self.sprout(*args)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"stack teardown: {exc}", file=sys.stderr)
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="worker processes/threads for nginx and HAProxy "
                        "(the router's default is one process)")  # fmt: skip
    parser.add_argument("--connections", default="64,256")
    parser.add_argument("--only", default="direct,nginx,haproxy,caddy,router,stack", help="which of direct, nginx, "
                        "haproxy, caddy, router, stack (sprout up, logs on) and minimal (bench/minimal_proxy.py: "
                        "a featureless Python proxy, the floor) to run")  # fmt: skip
    parser.add_argument(
        "--memory", action="store_true", help="also measure the router's RSS (1 M requests, 1 GiB)"
    )
    parser.add_argument("--profile", action="store_true", help="run the router under cProfile; print the top")
    parser.add_argument("--perf", action="store_true", help="sample the router with `perf record` during one "
                        "extra -c64 run and print where CPU time goes (kernel, interpreter, httptools, uvloop)")  # fmt: skip
    parser.add_argument("--instructions", action="store_true", help="instead of the contenders, count the "
                        "router worker's instructions per request under valgrind's callgrind (exact where CPU "
                        "time varies by host), without and with the access log")  # fmt: skip
    parser.add_argument("--serve-backend", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backend:
        serve_backend(args.serve_backend)
        return
    wanted = ["wrk", *(t for t in ("nginx", "haproxy", "caddy") if t in args.only.split(","))]
    missing = [tool for tool in wanted if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"bench/router.py: missing {', '.join(missing)}; install with `apt-get install {' '.join(missing)}`"
        )

    def body(folder: Path, procs: Processes) -> None:
        stack = Stack(folder)
        try:
            run(args, folder, procs, stack)
        finally:
            stack.down()

    in_temp_folder(
        "sprout-bench-router-", ("backend0", "backend1", "nginx", "haproxy", "caddy", "router"), body
    )


def in_temp_folder(prefix: str, logs: tuple[str, ...], body: Callable[[Path, Processes], None]) -> None:
    """Run `body` in a new /tmp folder; print the named logs if it fails; stop every process, remove the folder."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    procs = Processes(folder)
    try:
        body(folder, procs)
    except Exception:
        for name in logs:
            if procs.log(name):
                print(f"--- {name} log ---\n{procs.log(name)}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


def run(args: argparse.Namespace, folder: Path, procs: Processes, stack: Stack) -> None:
    backends = [free_port(), free_port()]
    pids: dict[str, int] = {}
    for i, port in enumerate(backends):
        proc = procs.start(f"backend{i}", [PY, __file__, "--serve-backend", str(port)])
        pids.setdefault("direct", proc.pid)
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    from sprout.router import native

    print(f"router hot path (router and stack): {native.state()}")
    for port in backends:
        wait_port(port)
    if args.instructions:
        instructions(folder, procs, backends, 2 * args.duration)
        return
    ports = {"direct": backends[0]}
    only = args.only.split(",")
    if "nginx" in only:
        ports["nginx"] = free_port()
        conf = nginx_conf(folder, ports["nginx"], backends, args.workers)
        nginx = procs.start("nginx", ["nginx", "-c", str(conf), "-p", str(folder), "-g", "daemon off;"])
        pids["nginx"] = nginx.pid
    if "haproxy" in only:
        ports["haproxy"] = free_port()
        haproxy = procs.start(
            "haproxy",
            ["haproxy", "-db", "-f", str(haproxy_conf(folder, ports["haproxy"], backends, args.workers))],
        )
        pids["haproxy"] = haproxy.pid
    if "caddy" in only:
        ports["caddy"] = free_port()
        env = {**os.environ, "XDG_DATA_HOME": str(folder / "xdg"), "XDG_CONFIG_HOME": str(folder / "xdg"),
               "HOME": str(folder), "GOMAXPROCS": str(args.workers)}  # fmt: skip
        caddy = procs.start("caddy", ["caddy", "run", "--adapter", "caddyfile", "--config",
                                      str(caddy_conf(folder, ports["caddy"], backends))], env=env)  # fmt: skip
        pids["caddy"] = caddy.pid
    daemon_pid = 0
    if "stack" in only:
        pids["stack"], daemon_pid = stack.up()
        ports["stack"] = stack.port
    if "minimal" in only:
        ports["minimal"] = free_port()
        minimal = procs.start(
            "minimal",
            [
                PY,
                str(Path(__file__).with_name("minimal_proxy.py")),
                str(ports["minimal"]),
                ",".join(map(str, backends)),
            ],
        )
        pids["minimal"] = minimal.pid
    router = None
    if "router" in only:
        ports["router"] = free_port()
        admin = free_port()
        (folder / "token").write_text(TOKEN)
        (folder / "token").chmod(0o600)
        cmd = [PY]
        if args.profile:
            cmd += ["-m", "cProfile", "-o", str(folder / "router.prof")]
        cmd += ["-m", "sprout.router", "--listen", f"127.0.0.1:{ports['router']}", "--admin", f"127.0.0.1:{admin}",
                "--token-file", str(folder / "token"), "--state", str(folder / "table.json")]  # fmt: skip
        router = procs.start("router", cmd)
        pids["router"] = router.pid
        wait_port(admin)
        targets = [
            {"id": f"b{i}", "address": f"127.0.0.1:{p}", "healthy": True} for i, p in enumerate(backends)
        ]
        admin_call(admin, "PUT", "/table", {"routes": [{"name": "bench", "hosts": ["bench.localhost"],
                   "default": True, "max_body": 2 << 30, "groups": [{"name": "g", "targets": targets}]}]})  # fmt: skip
    for name, port in ports.items():
        if name in only:
            wait_port(port)
            wrk(port, 64, 2)  # warm-up: pools filled, code paths hot
    daemon_idle = 0.0
    if daemon_pid:
        before = cpu_seconds(daemon_pid, children=False)
        time.sleep(10)
        daemon_idle = (cpu_seconds(daemon_pid, children=False) - before) / 10
        print(
            f"daemon CPU without traffic: {daemon_idle * 1000:.1f} ms/s (reconcile, autoscaler, health, API)"
        )
    conns = [int(c) for c in args.connections.split(",")]
    results: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_no in range(args.rounds):
        for c in conns:
            for name, port in ports.items():
                if name not in only:
                    continue
                pid = pids[name]
                cpu_before = cpu_seconds(pid)
                # The daemon alone: the router and the instances it started are its children.
                daemon_before = cpu_seconds(daemon_pid, children=False) if name == "stack" else 0.0
                r = wrk(port, c, args.duration)
                requests = r["rps"] * args.duration
                daemon_s = cpu_seconds(daemon_pid, children=False) - daemon_before if name == "stack" else 0.0
                r["daemon_us"] = daemon_s / requests * 1e6
                # What the requests add to the daemon's own steady cost (its loops tick with or without traffic).
                r["daemon_marginal_us"] = (daemon_s - daemon_idle * args.duration) / requests * 1e6
                r["cpu_us"] = (cpu_seconds(pid) - cpu_before) / requests * 1e6 + r["daemon_us"]
                results.setdefault((name, c), []).append(r)
                print(f"round {round_no + 1} c={c:<4} {name:<8} {r['rps']:>9.0f} req/s  p50 {r['p50']:.2f} ms  "
                      f"p99 {r['p99']:.2f} ms  non-2xx {r['non2xx']:.0f}  {r['cpu_us']:.1f} CPU-us/req"
                      + (f" (daemon {r['daemon_us']:.1f}, {r['daemon_marginal_us']:.1f} above idle)"
                         if name == "stack" else ""), flush=True)  # fmt: skip
    print(f"\nmedians of {args.rounds} rounds, wrk -t2 -d{args.duration}s, {args.workers} worker(s) for "
          f"nginx/HAProxy/Caddy, router default config, {os.cpu_count()} CPUs; load average now "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")  # fmt: skip
    print(f"{'':<10}{'conns':>6}{'req/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'CPU-us/req':>12}{'daemon':>8}")
    med: dict[tuple[str, int], dict[str, float]] = {}
    for (name, c), runs in sorted(results.items(), key=lambda kv: (kv[0][1], only.index(kv[0][0]))):
        keys = ("rps", "p50", "p99", "cpu_us", "daemon_us", "daemon_marginal_us")
        med[(name, c)] = {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}
        m = med[(name, c)]
        daemon = f"{m['daemon_us']:>8.1f}" if name == "stack" else ""
        print(
            f"{name:<10}{c:>6}{m['rps']:>11.0f}{m['p50']:>9.2f}{m['p99']:>9.2f}{m['cpu_us']:>12.1f}{daemon}"
        )
    for c in conns:
        if ("stack", c) in med:
            s = med[("stack", c)]
            line = [f"c={c}: stack"]
            if ("nginx", c) in med:
                n = med[("nginx", c)]
                line.append(
                    f"{s['rps'] / n['rps']:.2f}x nginx req/s (>= 0.8), p99 {s['p99'] / n['p99']:.2f}x (<= 2)"
                )
            if ("caddy", c) in med:
                line.append(f"{s['rps'] / med[('caddy', c)]['rps']:.2f}x Caddy req/s (>= 1.5)")
            line.append(
                f"daemon {s['daemon_us']:.1f} CPU-us/req (<= 5; {s['daemon_marginal_us']:.1f} above idle)"
            )
            print(", ".join(line))
        if ("router", c) not in med:
            continue
        r = med[("router", c)]
        for other in ("nginx", "haproxy", "caddy"):
            if (other, c) in med:
                o = med[(other, c)]
                print(
                    f"c={c}: router/{other} req/s {r['rps'] / o['rps']:.2f}x  p99 {r['p99'] / o['p99']:.2f}x"
                )
        if ("minimal", c) in med and ("nginx", c) in med:
            m, n = med[("minimal", c)], med[("nginx", c)]
            print(
                f"c={c}: minimal Python proxy/nginx req/s {m['rps'] / n['rps']:.2f}x  (the floor of a Python proxy)"
            )
    if args.perf and router is not None:
        perf_profile(folder, ports["router"], router.pid, args.duration)
    if args.memory and router is not None:
        memory(ports["router"], admin, router.pid, conns)
    if args.profile and router is not None:
        procs.stop(router)
        import pstats

        pstats.Stats(str(folder / "router.prof")).sort_stats("tottime").print_stats(25)


def instructions(folder: Path, procs: Processes, backends: list[int], duration: int) -> None:
    """The router worker's own instructions per proxied request (user space; callgrind counts exactly)."""
    if shutil.which("valgrind") is None:
        print("valgrind not found: no instruction count (apt-get install valgrind)")
        return
    import psutil

    from sprout.router import native

    print(f"router hot path: {native.state()}; wrk -t1 -c16 -d{duration}s under callgrind (~50x slower)")
    targets = [{"id": f"b{i}", "address": f"127.0.0.1:{p}", "healthy": True} for i, p in enumerate(backends)]
    for label, extra in (
        ("no access log", []),
        ("access log on", ["--access-log", str(folder / "log" / "a.jsonl")]),
    ):
        port, admin = free_port(), free_port()
        (folder / "token").write_text(TOKEN)
        (folder / "token").chmod(0o600)
        router = procs.start("router", ["valgrind", "--tool=callgrind", "--trace-children=yes",
                                        "--instr-atstart=no", f"--callgrind-out-file={folder}/callgrind.%p",
                                        PY, "-m", "sprout.router", "--listen", f"127.0.0.1:{port}",
                                        "--admin", f"127.0.0.1:{admin}", "--token-file", str(folder / "token"),
                                        "--state", str(folder / "table.json"), *extra])  # fmt: skip
        wait_port(admin, timeout=300)
        admin_call(admin, "PUT", "/table", {"routes": [{"name": "bench", "hosts": ["bench.localhost"],
                   "default": True, "groups": [{"name": "g", "targets": targets}]}]}, timeout=300)  # fmt: skip
        wait_port(port, timeout=300)
        worker = psutil.Process(router.pid).children()[0].pid
        subprocess.run(
            ["wrk", "-t1", "-c8", "-d5s", f"http://127.0.0.1:{port}/"], capture_output=True, check=True
        )
        subprocess.run(["callgrind_control", "-i", "on", str(worker)], capture_output=True, check=True)
        out = subprocess.run(["wrk", "-t1", "-c16", f"-d{duration}s", f"http://127.0.0.1:{port}/"],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
        subprocess.run(["callgrind_control", "-d", str(worker)], capture_output=True, check=True)
        requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
        dump = (folder / f"callgrind.{worker}.1").read_text(errors="replace")
        total = int(re.search(r"^(?:summary|totals): (\d+)", dump, re.M).group(1))  # type: ignore[union-attr]
        print(f"{label:<14} {total / requests:>8,.0f} instructions per request ({requests} requests)")
        procs.stop(router)


def perf_profile(folder: Path, port: int, pid: int, duration: int) -> None:
    if shutil.which("perf") is None:
        print("perf not found: skipping the perf profile (apt-get install linux-perf)")
        return
    data = folder / "perf.data"
    cmd = ["perf", "record", "-F", "999", "-e", "cpu-clock", "-g", "-p", str(pid), "-o", str(data)]
    recorder = subprocess.Popen([*cmd, "--", "sleep", str(duration)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)  # fmt: skip
    result = wrk(port, 64, duration)
    recorder.wait()
    print(
        f"\nperf profile of the router during wrk -c64 ({result['rps']:.0f} req/s), share of its CPU samples:"
    )
    for sort in ("dso", "sym"):
        report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", sort, "-g", "none"],
                                capture_output=True, text=True).stdout  # fmt: skip
        rows = [line for line in report.splitlines() if line.strip() and not line.startswith("#")]
        print("\n".join(rows[: 8 if sort == "dso" else 15]))


def memory(port: int, admin: int, pid: int, conns: list[int]) -> None:
    def proxied() -> int:
        doc = admin_call(admin, "GET", "/metrics.json")
        assert isinstance(doc, dict)
        return int(sum(t["requests"]["total"] for t in doc["targets"].values()))

    print(f"\nrouter RSS now {rss_mib(pid)[0]:.1f} MiB after {proxied()} proxied requests")
    while proxied() < 1_000_000:
        wrk(port, 64, 10)
    now, peak = rss_mib(pid)
    print(f"router RSS after {proxied()} proxied requests: {now:.1f} MiB (peak {peak:.1f} MiB)")
    size = 1 << 30
    block = b"x" * (1 << 20)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(
            f"POST /count HTTP/1.1\r\nHost: bench.localhost\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        samples = []
        for i in range(size // len(block)):
            sock.sendall(block)
            if i % 128 == 0:
                samples.append(rss_mib(pid)[0])
        reply = sock.recv(65536)
    seconds = time.monotonic() - started
    now, peak = rss_mib(pid)
    status_line = reply.split(b"\r\n")[0].decode()
    body = reply.rsplit(b"\r\n", 1)[-1].decode()
    print(f"1 GiB upload through the router in {seconds:.1f}s: {status_line!r}, body {body!r}; "
          f"RSS during {min(samples):.1f}-{max(samples):.1f} MiB, after {now:.1f} MiB, peak {peak:.1f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
