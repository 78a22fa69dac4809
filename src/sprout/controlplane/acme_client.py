"""Obtaining one host's certificate from an ACME server (RFC 8555) with certbot's `acme` library, by HTTP-01.

The account key is kept per ACME directory in the home's tls folder (0600) and registered once per
daemon; each certificate gets a fresh P-256 key. The router answers the HTTP-01 challenge from the
challenge file written here, on its plain HTTP port.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import certifi
from acme import challenges, client, crypto_util, errors, messages
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from josepy.jwa import ES256
from josepy.jwk import JWK, JWKEC

from sprout.errors import ServiceError, UserError
from sprout.paths import write_private
from sprout.router.certs import challenge_file

#: Seconds an order may take from the challenge answer to the issued certificate.
ORDER_TIMEOUT = 60
#: Seconds one request to the ACME server may take.
NETWORK_TIMEOUT = 30
USER_AGENT = "sprout-acme"


def new_key_pem() -> bytes:
    """A new P-256 private key in PEM (PKCS#8): small, and the fastest handshakes."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass
class AcmeAccounts:
    """The ACME clients of one home, one per (directory, contact, CA bundle), registered on first use."""

    folder: Path
    _clients: dict[tuple[str, str | None, str | None], tuple[client.ClientV2, JWK]] = field(
        default_factory=dict
    )

    def issue(self, host: str, directory: str, email: str | None, ca_bundle: Path | None) -> bytes:
        """A new private key and certificate chain for `host` as one PEM (key first)."""
        try:
            return self._issue(host, directory, email, ca_bundle)
        except ServiceError:
            raise  # the server answered the order: the account is fine
        except Exception:
            # The network, or a server that no longer knows the account (reset test CA): start afresh.
            self._clients.clear()
            raise

    def _issue(self, host: str, directory: str, email: str | None, ca_bundle: Path | None) -> bytes:
        acme, account_key = self._client(directory, email, ca_bundle)
        key_pem = new_key_pem()
        order = acme.new_order(crypto_util.make_csr(key_pem, [host]))
        written: list[Path] = []
        try:
            for authz in order.authorizations:
                chall = next(
                    (c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01)), None
                )
                if chall is None:
                    raise ServiceError(f"{host}: the ACME server offers no HTTP-01 challenge")
                if authz.body.status == messages.STATUS_VALID:
                    continue
                response, validation = chall.response_and_validation(account_key)
                path = challenge_file(self.folder, chall.chall.encode("token"))
                write_private(path, validation.encode())
                written.append(path)
                acme.answer_challenge(chall, response)
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=ORDER_TIMEOUT)
            try:
                done = acme.poll_and_finalize(order, deadline)
            except errors.ValidationError as exc:
                raise ServiceError(f"{host}: ACME challenge failed: {_failures(exc)}") from exc
            except errors.TimeoutError as exc:
                raise ServiceError(f"{host}: ACME order not done within {ORDER_TIMEOUT}s") from exc
        finally:
            for path in written:
                path.unlink(missing_ok=True)
        return key_pem + done.fullchain_pem.encode()

    def _client(
        self, directory: str, email: str | None, ca_bundle: Path | None
    ) -> tuple[client.ClientV2, JWK]:
        """The registered client of a directory (its account key is created on first use)."""
        slot = (directory, email, str(ca_bundle) if ca_bundle else None)
        found = self._clients.get(slot)
        if found is not None:
            return found
        name = hashlib.sha256(directory.encode()).hexdigest()[:16]
        key_path = self.folder / "accounts" / f"{name}.key"
        try:
            key_pem = key_path.read_bytes()
        except FileNotFoundError:
            key_pem = new_key_pem()
            write_private(key_path, key_pem)
        account_key = JWKEC.load(key_pem)
        net = client.ClientNetwork(account_key, alg=ES256, user_agent=USER_AGENT, timeout=NETWORK_TIMEOUT)
        if ca_bundle is not None:
            # Extra trust on top of the usual roots: the ACME server may be a test CA (Pebble).
            trust = self.folder / "accounts" / f"{name}-trust.pem"
            try:
                extra = ca_bundle.read_bytes()
            except OSError as exc:
                raise UserError(f"[tls] acme_ca_bundle {ca_bundle}: cannot read ({exc.strerror})") from exc
            write_private(trust, Path(certifi.where()).read_bytes() + b"\n" + extra)
            net.verify_ssl = str(trust)  # type: ignore[assignment]  # requests takes a bundle path too
        acme = client.ClientV2(client.ClientV2.get_directory(directory, net), net)
        registration = messages.NewRegistration.from_data(email=email, terms_of_service_agreed=True)
        try:
            acme.new_account(registration)
        except errors.ConflictError as exc:
            # The key is already registered: use that account.
            net.account = messages.RegistrationResource(uri=exc.location, body=messages.Registration())
        self._clients[slot] = (acme, account_key)
        return acme, account_key


def _failures(exc: errors.ValidationError) -> str:
    """The server's reason for each failed challenge, on one line."""
    reasons = [
        f"{c.chall.typ}: {c.error.detail or c.error.typ}"
        for authz in exc.failed_authzrs
        for c in authz.body.challenges
        if c.error is not None
    ]
    return "; ".join(reasons) or "no reason given"
