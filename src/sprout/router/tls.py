"""HTTPS at the router: per-host certificates chosen by SNI, reloaded from the certificate folder, and the
plain-HTTP side of TLS hosts (ACME HTTP-01 answers, 308 to https).

Each host gets its own `SSLContext`; the listener's context only picks one per handshake (SNI), so a
renewed certificate replaces a host's context for new handshakes while open connections keep the one
they started with: nothing is dropped.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

from sprout.router import wire
from sprout.router.certs import CHALLENGE_PREFIX, TOKEN, challenge_file, host_of
from sprout.router.table import host_name

log = logging.getLogger("sprout.router")

#: TLS 1.2 suites with forward secrecy and AEAD only (Mozilla's "intermediate"); TLS 1.3 suites are all good.
CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
_MAX_MEMO = 10_000
_UNSEEN: str | None = "\0unseen"


def server_context() -> ssl.SSLContext:
    """A server context with modern defaults: TLS 1.2+, forward-secret AEAD ciphers, HTTP/1.1 by ALPN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class TlsFront:
    """The router's certificates by host, the listener context that picks among them, and plain-HTTP answers."""

    def __init__(self, folder: Path, https_port: int) -> None:
        self.folder = folder
        self.https_port = https_port
        self.contexts: dict[str, ssl.SSLContext] = {}
        self._seen: dict[Path, tuple[int, int]] = {}
        #: Raw Host header → the name it redirects to over HTTPS (None: plain HTTP serves it).
        self._redirects: dict[bytes, str | None] = {}
        self.listener = server_context()
        self.listener.sni_callback = self._pick

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _: ssl.SSLContext) -> int | None:
        ctx = self.context_for(name.lower().rstrip(".") if name else "")
        if ctx is None:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sock.context = ctx
        return None

    def context_for(self, name: str) -> ssl.SSLContext | None:
        """The context of a host: its own certificate, else a wildcard one of its parent domain."""
        ctx = self.contexts.get(name)
        if ctx is None and "." in name:
            ctx = self.contexts.get("*." + name.split(".", 1)[1])
        return ctx

    def reload(self) -> None:
        """Load new or changed certificate files and forget removed ones."""
        found: dict[Path, tuple[int, int]] = {}
        try:
            with os.scandir(self.folder / "certs") as entries:
                for entry in entries:
                    if entry.name.endswith(".pem") and not entry.name.startswith("."):
                        st = entry.stat()
                        found[Path(entry.path)] = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            pass
        changed = False
        for path, stamp in found.items():
            if self._seen.get(path) == stamp:
                continue
            host = host_of(path)
            ctx = server_context()
            try:
                ctx.load_cert_chain(path)
            except (OSError, ssl.SSLError) as exc:
                # A half-written or broken file: keep serving the previous certificate, look again later.
                log.error("certificate %s not loaded (%s); keeping the previous one for %s", path, exc, host)
                continue
            self.contexts[host] = ctx
            self._seen[path] = stamp
            changed = True
            log.info("certificate for %s loaded from %s", host, path)
        for path in set(self._seen) - set(found):
            del self._seen[path]
            self.contexts.pop(host_of(path), None)
            changed = True
            log.info("certificate for %s removed", host_of(path))
        if changed:
            self._redirects.clear()

    def plain_answer(self, host: bytes, url: bytes, rid: bytes, close: bool) -> tuple[int, bytes] | None:
        """What the plain-HTTP port answers itself: an ACME challenge, or 308 to https for a TLS host."""
        if url.startswith(CHALLENGE_PREFIX):
            token = url[len(CHALLENGE_PREFIX) :].decode("latin-1")
            if TOKEN.match(token):
                try:
                    body = challenge_file(self.folder, token).read_bytes()
                except FileNotFoundError:
                    return 404, wire.local_response(404, "no such ACME challenge", rid, close)
                head = b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                tail = b"Connection: close\r\n\r\n" if close else b"\r\n"
                return 200, head % len(body) + b"X-Request-Id: " + rid + b"\r\n" + tail + body
        target = self._redirects.get(host, _UNSEEN)
        if target is _UNSEEN:
            name = host_name(host)
            target = name if self.context_for(name) is not None else None
            if len(self._redirects) < _MAX_MEMO:
                self._redirects[host] = target
        if target is None:
            return None
        port = "" if self.https_port == 443 else f":{self.https_port}"
        location = f"https://{target}{port}".encode() + url
        return 308, (
            b"HTTP/1.1 308 Permanent Redirect\r\nLocation: %s\r\nContent-Length: 0\r\nX-Request-Id: %s\r\n%s\r\n"
            % (location, rid, b"Connection: close\r\n" if close else b"")
        )
