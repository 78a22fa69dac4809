"""The certificate loop: every host of every environment with `[tls]` gets a certificate in the router's folder.

ACME hosts are issued a certificate when they have none and renewed 30 days before expiry, or after two
thirds of the lifetime of a short-lived one (test CAs issue certificates valid for minutes). A host whose
order fails is retried with a growing delay and an event says why; plain HTTP keeps serving it meanwhile
(the router redirects a host to HTTPS only once it has its certificate). `cert`/`key` files are copied in
whenever they change. Certificates of hosts no environment asks for any more are removed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sprout.controlplane.acme_client import AcmeAccounts
from sprout.controlplane.backoff import Backoff
from sprout.controlplane.routing import env_hosts
from sprout.errors import SproutError
from sprout.paths import write_private
from sprout.router.certs import CertInfo, cert_file, read_info, stored_certificates
from sprout.spec.tls import TlsSection
from sprout.state import Environment, StateStore

log = logging.getLogger("sprout.daemon")

#: Seconds between passes of the loop (renewal is decided per pass).
CERT_INTERVAL = 3.0
#: Renew this long before expiry (Let's Encrypt's own advice for 90-day certificates)...
RENEW_BEFORE = 30 * 86400.0
#: ...or after this fraction of the lifetime, when that comes first (short-lived certificates).
RENEW_AFTER_FRACTION = 2 / 3
#: A failed order is retried after this delay, doubled per failure up to RETRY_MAX (ACME servers limit
#: failed validations: Let's Encrypt allows 5 per host and hour).
RETRY_FIRST = 30.0
RETRY_MAX = 3600.0


def renewal_due(info: CertInfo) -> float:
    """When a certificate should be replaced."""
    lifetime = info.not_after - info.not_before
    return info.not_after - min(RENEW_BEFORE, lifetime * (1 - RENEW_AFTER_FRACTION))


def when(stamp: float) -> str:
    """A timestamp as UTC text for events."""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Certificates:
    """Keeps the router's certificate folder in line with the environments that ask for TLS."""

    store: StateStore
    folder: Path
    accounts: AcmeAccounts = field(init=False)
    retries: dict[str, Backoff] = field(default_factory=dict)
    #: Certificate files copied from an app folder: host → the content last written.
    copied: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.accounts = AcmeAccounts(self.folder)

    def run_pass(self) -> None:
        """Issue, renew, copy and prune certificates; one host's failure never stops the others."""
        wanted: set[str] = set()
        for env in self.store.list_environments():
            tls = env.manifest.tls
            if tls is None:
                continue
            for host in env_hosts(env):
                wanted.add(host)
                retry = self.retries.get(host)
                if retry is not None and time.time() < retry.not_before:
                    continue
                try:
                    if tls.from_files:
                        self._copy(env, host, tls)
                    else:
                        self._acme(env, host, tls)
                except SproutError as exc:
                    self._failed(env, host, str(exc))
                else:
                    self.retries.pop(host, None)
        for host in stored_certificates(self.folder).keys() - wanted:
            cert_file(self.folder, host).unlink(missing_ok=True)
            self.retries.pop(host, None)
            self.store.record_event(
                None, None, "tls.removed", f"{host}: certificate removed (no [tls] asks for it)"
            )

    def _acme(self, env: Environment, host: str, tls: TlsSection) -> None:
        if host.startswith("*."):
            raise SproutError(f"{host}: a wildcard needs a DNS-01 challenge; give [tls] cert and key files")
        info = read_info(cert_file(self.folder, host))
        if info is not None and time.time() < renewal_due(info):
            return
        bundle = env.app_dir / tls.acme_ca_bundle if tls.acme_ca_bundle else None
        try:
            pem = self.accounts.issue(host, tls.acme_directory, tls.email, bundle)
        except Exception as exc:
            if isinstance(exc, SproutError):
                raise
            # The ACME library and the network raise many kinds; each is this host's failure, reported.
            raise SproutError(f"{host}: ACME order failed: {type(exc).__name__}: {exc}") from exc
        write_private(cert_file(self.folder, host), pem)
        issued = read_info(cert_file(self.folder, host))
        assert issued is not None
        verb = "renewed" if info is not None else "issued"
        self.store.record_event(
            env.app,
            env.name,
            f"tls.{verb}",
            f"{host}: certificate {verb} by {issued.issuer}, valid until {when(issued.not_after)}",
            host=host,
            not_after=issued.not_after,
        )

    def _copy(self, env: Environment, host: str, tls: TlsSection) -> None:
        assert tls.cert is not None and tls.key is not None
        try:
            pem = (env.app_dir / tls.key).read_bytes() + b"\n" + (env.app_dir / tls.cert).read_bytes()
        except OSError as exc:
            raise SproutError(
                f"{host}: [tls] cert/key of {env.app_dir}: {exc.filename}: {exc.strerror}"
            ) from exc
        if self.copied.get(host) == pem and cert_file(self.folder, host).exists():
            return
        write_private(cert_file(self.folder, host), pem)
        self.copied[host] = pem
        info = read_info(cert_file(self.folder, host))
        until = f", valid until {when(info.not_after)}" if info else ""
        self.store.record_event(
            env.app,
            env.name,
            "tls.installed",
            f"{host}: certificate installed from {tls.cert}{until}",
            host=host,
        )

    def _failed(self, env: Environment, host: str, message: str) -> None:
        retry = self.retries.setdefault(host, Backoff(first=RETRY_FIRST, cap=RETRY_MAX))
        retry.failed(time.time())
        delay = retry.delay
        log.warning("%s; retrying in %.0fs", message, delay)
        self.store.record_event(
            env.app,
            env.name,
            "tls.failed",
            f"{message}; plain HTTP still serves it; retrying in {delay:.0f}s",
            host=host,
        )
