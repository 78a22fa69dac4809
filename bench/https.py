"""Benchmark HTTPS through `sprout router` against nginx, same certificate, same uvicorn backend, with wrk.

Needs `wrk` and `nginx` on PATH (Debian: `apt-get install wrk nginx`); installs nothing. Writes a
P-256 certificate for `localhost` (from a throwaway CA) and the configs under a /tmp folder, runs nginx as the
current user on a free loopback port, and kills every process it started by PID at the end.

    .venv/bin/python bench/https.py [--duration 10] [--rounds 1] [--workers 1]

Prints req/s and p99 for each proxy over HTTPS with keep-alive connections (-c64: mostly the record layer
and the proxy) and with a new connection per request (-c16, `Connection: close`: a full handshake each
time), and over plain HTTP keep-alive (-c64) in the same run as the yardstick.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from pathlib import Path

from router import PY, TOKEN, Processes, admin_call, free_port, in_temp_folder, nginx_conf, wait_port, wrk
from sprout.router.tls import CIPHERS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from certs_kit import CertAuthority

HOST = "localhost"


def certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for HOST from a throwaway CA (the tests' kit): (chain file, key file)."""
    key, chain, _ = CertAuthority.create(folder / "ca").leaf(HOST)
    chain_file, key_file = folder / "cert.pem", folder / "key.pem"
    chain_file.write_bytes(chain)
    key_file.write_bytes(key)
    key_file.chmod(0o600)
    return chain_file, key_file


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1, help="nginx worker processes (the router runs one)")
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"bench/https.py: missing {', '.join(missing)}; install with `apt-get install wrk nginx`")
    in_temp_folder(
        "sprout-bench-https-", ("backend", "nginx", "router"), lambda folder, procs: run(args, folder, procs)
    )


def run(args: argparse.Namespace, folder: Path, procs: Processes) -> None:
    chain, key = certificate(folder)
    backend = free_port()
    procs.start("backend", [PY, str(Path(__file__).with_name("router.py")), "--serve-backend", str(backend)])
    wait_port(backend)
    ports = {"nginx": free_port(), "router": free_port()}
    plain = {"nginx": free_port(), "router": free_port()}
    conf = nginx_conf(folder, plain["nginx"], [backend], args.workers, (ports["nginx"], chain, key, CIPHERS))
    procs.start("nginx", ["nginx", "-c", str(conf), "-p", str(folder), "-g", "daemon off;"])
    tls_dir = folder / "tls"
    (tls_dir / "certs").mkdir(parents=True)
    pem = tls_dir / "certs" / f"{HOST}.pem"
    pem.write_bytes(key.read_bytes() + chain.read_bytes())
    pem.chmod(0o600)
    admin = free_port()
    (folder / "token").write_text(TOKEN)
    (folder / "token").chmod(0o600)
    procs.start(
        "router",
        [PY, "-m", "sprout.router", "--listen", f"127.0.0.1:{plain['router']}", "--admin", f"127.0.0.1:{admin}",
         "--https", f"127.0.0.1:{ports['router']}", "--tls-dir", str(tls_dir),
         "--token-file", str(folder / "token"), "--state", str(folder / "table.json")],
    )  # fmt: skip
    wait_port(admin)
    admin_call(admin, "PUT", "/table", {"routes": [{"name": "bench", "hosts": [HOST], "default": True,
               "groups": [{"name": "g", "targets": [
                   {"id": "b0", "address": f"127.0.0.1:{backend}", "healthy": True}]}]}]})  # fmt: skip
    # (connections, new connection per request, scheme): plain HTTP keep-alive is the yardstick.
    modes = {
        "http keep-alive -c64": (64, False, "http"),
        "https keep-alive -c64": (64, False, "https"),
        "https new conn -c16": (16, True, "https"),
    }
    for name, port in ports.items():
        wait_port(port)
        wait_port(plain[name])
        wrk(port, 64, 2, scheme="https", host=HOST)  # warm-up
    results: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for mode, (connections, close, scheme) in modes.items():
            for name in ports:
                port = ports[name] if scheme == "https" else plain[name]
                # Plain requests go to the default route by address: `localhost` has a certificate, so
                # the router would answer it with a redirect to HTTPS.
                host = HOST if scheme == "https" else ""
                r = wrk(port, connections, args.duration, scheme=scheme, host=host, close=close)
                results.setdefault((mode, name), []).append(r)
    print(f"HTTPS through one uvicorn backend, wrk -t2, {args.duration}s x {args.rounds} (medians)")
    print(f"{'mode':<24}{'proxy':<8}{'req/s':>10}{'p99 ms':>10}{'errors':>8}")
    for (mode, name), runs in results.items():
        rps = statistics.median(r["rps"] for r in runs)
        p99 = statistics.median(r["p99"] for r in runs)
        errors = sum(r["non2xx"] + r["sockerr"] for r in runs)
        print(f"{mode:<24}{name:<8}{rps:>10.0f}{p99:>10.2f}{errors:>8.0f}")
    for mode in modes:
        router = statistics.median(r["rps"] for r in results[(mode, "router")])
        nginx = statistics.median(r["rps"] for r in results[(mode, "nginx")])
        print(f"{mode}: router/nginx = {router / nginx:.2f}")


if __name__ == "__main__":
    main()
