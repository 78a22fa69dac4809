"""The router's HTTPS listener: SNI, modern defaults, certificate swaps without a dropped connection, and the
plain port's answers for TLS hosts (308, ACME challenges)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from cryptography import x509

from certs_kit import CertAuthority
from conftest import get, group, route, table
from loopback import free_port
from sprout.router.certs import cert_file, challenge_file


class Pinned(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1 with `host` as SNI and Host."""

    def connect(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]

    def fetch(self, path: str = "/") -> tuple[int, bytes, dict[str, str]]:
        self.request("GET", path)
        response = self.getresponse()
        return response.status, response.read(), dict(response.getheaders())

    def serial(self) -> int:
        assert isinstance(self.sock, ssl.SSLSocket)
        der = self.sock.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number


def _install(ca: CertAuthority, folder: Path, host: str) -> int:
    key, chain, cert = ca.leaf(host)
    path = cert_file(folder, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(key + chain)
    tmp.replace(path)
    return int(cert.serial_number)


def _wait(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_sni_swap_without_drop_redirect_challenge_and_defaults(
    start_backend: Any, start_router: Any, tmp_path: Path
) -> None:
    ca = CertAuthority.create(tmp_path / "ca")
    folder = tmp_path / "tls"
    first = {host: _install(ca, folder, host) for host in ("a.test", "b.test")}
    https = free_port()
    router = start_router("--https", f"127.0.0.1:{https}", "--tls-dir", str(folder))
    backend = start_backend()
    hosts = ["a.test", "b.test", "plain.test"]
    router.admin.put_table(table(route("r", [group("g", [backend], healthy=True)], hosts=hosts, hsts=600)))
    trust = ssl.create_default_context(cafile=str(ca.file))

    # Each host gets its own certificate on the one port; the app sees https, and HSTS is sent.
    a = Pinned("a.test", https, context=trust, timeout=5)
    status, body, headers = a.fetch("/headers")
    assert status == 200 and a.serial() == first["a.test"]
    assert json.loads(body)["x-forwarded-proto"] == "https"
    assert headers["Strict-Transport-Security"] == "max-age=600"
    b = Pinned("b.test", https, context=trust, timeout=5)
    assert b.fetch()[0] == 200 and b.serial() == first["b.test"]
    b.close()
    # A host without a certificate is refused at the handshake; so is a TLS 1.2 client offering only a
    # CBC suite, while one with the usual offer gets an AEAD suite.
    with pytest.raises(ssl.SSLError):
        Pinned("plain.test", https, context=trust, timeout=5).fetch()
    tls12 = ssl.create_default_context(cafile=str(ca.file))
    tls12.maximum_version = ssl.TLSVersion.TLSv1_2
    modern = Pinned("a.test", https, context=tls12, timeout=5)
    assert modern.fetch()[0] == 200
    assert isinstance(modern.sock, ssl.SSLSocket)
    suite = modern.sock.cipher()
    assert suite is not None and suite[1] == "TLSv1.2" and ("GCM" in suite[0] or "CHACHA20" in suite[0])
    modern.close()
    tls12.set_ciphers("ECDHE-ECDSA-AES128-SHA")
    with pytest.raises(ssl.SSLError):
        Pinned("a.test", https, context=tls12, timeout=5).fetch()

    # Plain HTTP: a TLS host is redirected (same host and path), any host's ACME challenge is answered.
    with httpx.Client(trust_env=False) as client:
        moved = get(client, router, "/x?y=1", "a.test")
        assert moved.status_code == 308
        assert moved.headers["location"] == f"https://a.test:{https}/x?y=1"
        assert get(client, router, "/", "plain.test").status_code == 200
        token = "tok_" + "x" * 40
        challenge = challenge_file(folder, token)
        challenge.parent.mkdir(parents=True, exist_ok=True)
        challenge.write_text(f"{token}.thumbprint")
        answered = get(client, router, f"/.well-known/acme-challenge/{token}", "a.test")
        assert answered.status_code == 200 and answered.text == f"{token}.thumbprint"
        assert get(client, router, "/.well-known/acme-challenge/" + "y" * 40, "new.test").status_code == 404

    # A renewed certificate serves new handshakes; the open connection goes on with the one it has.
    renewed = _install(ca, folder, "a.test")

    def new_connection_sees_it() -> bool:
        fresh = Pinned("a.test", https, context=trust, timeout=5)
        try:
            return fresh.fetch()[0] == 200 and fresh.serial() == renewed
        finally:
            fresh.close()

    _wait(new_connection_sees_it, "the renewed certificate was not served")
    assert a.fetch()[0] == 200 and a.serial() == first["a.test"]
    a.close()

    # A replaced worker (killed; the supervisor starts another on the same sockets) serves the same
    # certificates at once: they are files, read at start.
    worker = psutil.Process(router.proc.pid).children()[0]
    worker.kill()
    _wait(new_connection_sees_it, "no HTTPS after the worker was replaced", timeout=30)
    assert [p.pid for p in psutil.Process(router.proc.pid).children()] != [worker.pid]

    # A removed certificate: that host is served over plain HTTP again.
    cert_file(folder, "b.test").unlink()
    with httpx.Client(trust_env=False) as client:
        _wait(lambda: get(client, router, "/", "b.test").status_code == 200, "b.test still redirected")
