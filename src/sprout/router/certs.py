"""The router's certificate folder: one PEM (key + chain, mode 0600) per host and the pending ACME challenges.

The control plane writes it, the router reads it: `certs/<host>.pem` holds a host's private key and its
certificate chain in one file, replaced atomically, so the router never pairs a new key with an old
certificate; `challenges/<token>` holds the key authorization an ACME server fetches over plain HTTP.
Both outlive the daemon and the router, so a restarted router serves the same certificates at once.
Free of asyncio and of the proxy: the control plane imports it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

#: An ACME token (RFC 8555 §8.3: base64url, no padding); anything else is never looked up on disk.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
CHALLENGE_PREFIX = b"/.well-known/acme-challenge/"


def cert_file(folder: Path, host: str) -> Path:
    """Where the PEM of `host` lives (a wildcard `*.example.com` is stored as `_.example.com`)."""
    return folder / "certs" / (host.replace("*", "_") + ".pem")


def host_of(path: Path) -> str:
    """The host a PEM file of the certs folder serves (the inverse of `cert_file`)."""
    name = path.name.removesuffix(".pem")
    return "*" + name[1:] if name.startswith("_.") else name


def challenge_file(folder: Path, token: str) -> Path:
    """Where the key authorization of an ACME token lives."""
    return folder / "challenges" / token


@dataclass(frozen=True)
class CertInfo:
    """What a stored certificate is for and how long it is valid."""

    host: str
    not_before: float
    not_after: float
    issuer: str
    serial: int

    def to_json(self) -> dict[str, object]:
        """The certificate as a status document entry."""
        return {
            "host": self.host,
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issuer": self.issuer,
            "serial": format(self.serial, "x"),
        }


def read_info(path: Path) -> CertInfo | None:
    """The first certificate of a stored PEM (the leaf), or None when there is none (or no file)."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError:
        return None
    start = pem.find(b"-----BEGIN CERTIFICATE-----")
    if start < 0:
        return None
    # Here, not at the top: `sprout status` reads the folder through this module and must start fast.
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(pem[start:])
    return CertInfo(
        host_of(path),
        cert.not_valid_before_utc.replace(tzinfo=UTC).timestamp(),
        cert.not_valid_after_utc.replace(tzinfo=UTC).timestamp(),
        cert.issuer.rfc4514_string(),
        cert.serial_number,
    )


def stored_certificates(folder: Path) -> dict[str, CertInfo]:
    """Every stored certificate by host."""
    found: dict[str, CertInfo] = {}
    for path in sorted((folder / "certs").glob("*.pem")):
        info = read_info(path)
        if info is not None:
            found[info.host] = info
    return found


def certificates_status(folder: Path, hosts: list[str]) -> list[dict[str, object]]:
    """The certificate of each host that has one: issuer and validity (for status documents)."""
    found = []
    for host in hosts:
        info = read_info(cert_file(folder, host))
        if info is not None:
            found.append(info.to_json())
    return found
