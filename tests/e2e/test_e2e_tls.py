"""HTTPS at the front door against a real ACME server: Pebble, with pebble-challtestsrv as the DNS stub.

One stack for every point: `sprout up --https-port` issues a certificate per host (SNI picks it), plain
HTTP redirects with 308, a host whose challenge cannot succeed gets a clear event and keeps plain HTTP,
and Pebble's short-lived certificates are renewed under HTTPS load without a failed request.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import sqlite3
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from e2e_kit import Sprout, edit_manifest, kill_all, make_app, processes_of

from certs_kit import CertAuthority
from loopback import free_port

pytestmark = pytest.mark.slow

#: Pebble issues certificates valid this long (seconds): short, so that renewal happens during the test.
VALIDITY = 60
HOSTS = ["shop.example.test", "www.example.test", "bad.example.test"]


@dataclass
class Pebble:
    """A running Pebble: its ACME directory, the CA of its own HTTPS, the root of what it issues."""

    directory: str
    ca_file: Path
    root_file: Path
    challtest_admin: str


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited {proc.returncode}: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not listen on {port} within 30s: {log.read_text()[-2000:]}")


@pytest.fixture
def tls_sprout(tmp_path: Path) -> Iterator[tuple[Sprout, Pebble, int]]:
    """Pebble + DNS stub on free ports, and a hello app with [tls] pointing at Pebble; all stopped by PID."""
    if shutil.which("pebble") is None or shutil.which("pebble-challtestsrv") is None:
        message = "pebble and pebble-challtestsrv are needed (Debian package pebble; scripts/services.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port, https_port = free_port(), free_port()
    acme, management, dns, challtest_admin = free_port(), free_port(), free_port(), free_port()
    pki = tmp_path / "pebble"
    pki.mkdir()
    ca = CertAuthority.create(pki)
    key_pem, cert_pem, _ = ca.leaf("localhost", "127.0.0.1")
    ca_file, cert_file, key_file = ca.file, pki / "cert.pem", pki / "key.pem"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    config = pki / "pebble.json"
    config.write_text(
        json.dumps(
            {
                "pebble": {
                    "listenAddress": f"127.0.0.1:{acme}",
                    "managementListenAddress": f"127.0.0.1:{management}",
                    "certificate": str(cert_file),
                    "privateKey": str(key_file),
                    # HTTP-01 validation goes to the router's plain port.
                    "httpPort": port,
                    "tlsPort": free_port(),
                    "ocspResponderURL": "",
                    "externalAccountBindingRequired": False,
                    "certificateValidityPeriod": VALIDITY,
                }
            }
        )
    )
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        stub = [
            "pebble-challtestsrv",
            "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
            "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
            "-management", f"127.0.0.1:{challtest_admin}",
        ]  # fmt: skip
        stub_log = pki / "challtestsrv.log"
        with open(stub_log, "wb") as out:
            procs.append(subprocess.Popen(stub, stdout=out, stderr=subprocess.STDOUT, env=env))
        _wait_port(challtest_admin, procs[0], "pebble-challtestsrv", stub_log)
        pebble_log = pki / "pebble.log"
        with open(pebble_log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    ["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns}"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=pki,
                )
            )
        _wait_port(acme, procs[1], "pebble", pebble_log)
        _wait_port(management, procs[1], "pebble", pebble_log)
        root = httpx.get(
            f"https://127.0.0.1:{management}/roots/0",
            verify=ssl.create_default_context(cafile=str(ca_file)),
            trust_env=False,
        )
        root.raise_for_status()
        root_file = pki / "issued-root.pem"
        root_file.write_text(root.text)
        pebble = Pebble(
            f"https://127.0.0.1:{acme}/dir", ca_file, root_file, f"http://127.0.0.1:{challtest_admin}"
        )
        hosts = ", ".join(f'"{h}"' for h in HOSTS)
        app = make_app(
            tmp_path,
            f'[router]\nhosts = [{hosts}]\n\n[tls]\nacme_directory = "{pebble.directory}"\n'
            f'acme_ca_bundle = "{ca_file}"\nemail = "ops@example.test"\nhsts = "1h"\n\n'
            "[scaling]\nenabled = false\n",
        )
        # One instance: the test is about the front door, not the fleet.
        edit_manifest(app, "min = 2", "min = 1")
        sprout = Sprout(home=tmp_path / "home", app_dir=app, port=port)
        try:
            yield sprout, pebble, https_port
        finally:
            if sprout.home.exists():
                sprout.run("down", str(app), check=False, timeout=90)
            kill_all(processes_of(sprout.home))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Pinned(http.client.HTTPSConnection):
    """An HTTPS connection to 127.0.0.1 that sends `host` as SNI and Host (no DNS needed)."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

    def served(self) -> x509.Certificate:
        assert isinstance(self.sock, ssl.SSLSocket)
        der = self.sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)


def _https(port: int, host: str, root: Path, path: str = "/") -> tuple[int, x509.Certificate, dict[str, str]]:
    conn = Pinned(host, port, context=ssl.create_default_context(cafile=str(root)), timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, conn.served(), dict(response.getheaders())
    finally:
        conn.close()


def _names(cert: x509.Certificate) -> list[str]:
    return cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName
    )


def _events(sprout: Sprout, kind: str) -> list[dict[str, object]]:
    with sqlite3.connect(sprout.home / "state.db") as db:
        rows = db.execute("SELECT kind, message FROM events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
    return [{"kind": k, "message": m} for k, m in rows]


def test_https_by_acme_sni_redirect_failed_challenge_and_renewal_under_load(
    tls_sprout: tuple[Sprout, Pebble, int],
) -> None:
    sprout, pebble, https_port = tls_sprout
    # The bad host resolves where nothing listens: its HTTP-01 challenge cannot succeed.
    httpx.post(
        f"{pebble.challtest_admin}/add-a",
        json={"host": "bad.example.test", "addresses": ["127.0.0.2"]},
        trust_env=False,
    ).raise_for_status()
    started = time.monotonic()
    up = sprout.run("up", str(sprout.app_dir), "--port", str(sprout.port), "--https-port", str(https_port))
    assert f"HTTPS: https://shop.example.test:{https_port}/" in up.stdout
    up_took = time.monotonic() - started

    # 1. HTTPS on the HTTPS port verifies with Pebble's root within 60 s of `up` (counted from its
    # return: on a loaded 2-core machine `up` alone, launching the fleet, can take longer than that).
    deadline = time.monotonic() + 90
    while True:
        try:
            status, shop_cert, headers = _https(https_port, "shop.example.test", pebble.root_file, "/")
            break
        except (OSError, ssl.SSLError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"no verified HTTPS for shop.example.test: {exc}") from exc
            time.sleep(0.5)
    https_after = time.monotonic() - started
    print(f"`up` took {up_took:.1f}s; verified HTTPS {https_after:.1f}s after `up` began")
    assert https_after - up_took < 60
    assert status == 200
    assert headers.get("Strict-Transport-Security") == "max-age=3600"
    # Plain HTTP answers 308 to the https URL (same host and path).
    plain = httpx.get(
        f"http://127.0.0.1:{sprout.port}/a/b?c=1", headers={"Host": "shop.example.test"}, trust_env=False
    )
    assert plain.status_code == 308
    assert plain.headers["location"] == f"https://shop.example.test:{https_port}/a/b?c=1"

    # SNI: the second host on the same port gets its own certificate.
    deadline = time.monotonic() + 30
    while True:
        try:
            _, www_cert, _ = _https(https_port, "www.example.test", pebble.root_file)
            break
        except (OSError, ssl.SSLError):
            assert time.monotonic() < deadline, "no certificate for www.example.test"
            time.sleep(0.5)
    assert _names(shop_cert) == ["shop.example.test"]
    assert _names(www_cert) == ["www.example.test"]

    # A failed challenge: a clear event, and plain HTTP still serves that host.
    deadline = time.monotonic() + 30
    while not _events(sprout, "tls.failed"):
        assert time.monotonic() < deadline, "no tls.failed event"
        time.sleep(0.5)
    failed = str(_events(sprout, "tls.failed")[0]["message"])
    assert (
        failed.startswith("bad.example.test: ACME challenge failed: ") and "plain HTTP still serves" in failed
    )
    assert sprout.get("/", host="bad.example.test").status_code == 200
    # `status --json` says which hosts have certificates and until when.
    env = sprout.environment()
    assert {c["host"] for c in env["certificates"]} == {"shop.example.test", "www.example.test"}
    assert all(c["not_after"] > time.time() for c in env["certificates"])
    assert "https://www.example.test/ certificate valid until" in sprout.run("status").stdout

    # 2. Renewal: the served certificate changes before it expires, with 0 failed requests at ~100 req/s.
    first = _https(https_port, "shop.example.test", pebble.root_file)[1]
    expires = first.not_valid_after_utc.timestamp()
    # The load runs from shortly before the renewal is due (two thirds of the lifetime) until it is seen.
    due = first.not_valid_before_utc.timestamp() + (expires - first.not_valid_before_utc.timestamp()) * 2 / 3
    time.sleep(max(0.0, due - 3 - time.time()))
    stop = threading.Event()
    failures: list[str] = []
    served: list[tuple[float, int]] = []
    counts = [0]

    def load() -> None:
        context = ssl.create_default_context(cafile=str(pebble.root_file))
        conn = Pinned("shop.example.test", https_port, context=context, timeout=5)
        sent = 0
        while not stop.is_set():
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"status {response.status}")
                served.append((time.time(), conn.served().serial_number))
            except (OSError, ssl.SSLError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
            sent += 1
            counts[0] += 1
            if sent % 10 == 0:
                # A new connection (and handshake) now and then, one keep-alive connection meanwhile.
                conn.close()
            time.sleep(0.05)
        conn.close()

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    try:
        deadline = time.monotonic() + VALIDITY
        while not any(serial != first.serial_number for _, serial in served):
            assert time.monotonic() < deadline, "the served certificate did not change"
            time.sleep(0.2)
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    changed_at = min(t for t, serial in served if serial != first.serial_number)
    rate = counts[0] / (time.monotonic() - began)
    assert changed_at < expires
    assert failures == [], failures[:5]
    assert rate > 50, f"only {rate:.0f} req/s"
    assert _events(sprout, "tls.renewed")
    print(
        f"renewal under load: {counts[0]} requests in {time.monotonic() - began:.1f}s at {rate:.0f} req/s, 0 failed"
    )
