"""Certificates from `[tls] cert`/`key` files: copied into the router's folder per host (0600), refreshed
when the files change, a missing file a clear event retried with back-off, removed when unwanted."""

from __future__ import annotations

from pathlib import Path

from certs_kit import CertAuthority
from sprout.controlplane.certificates import RETRY_FIRST, Certificates
from sprout.router.certs import cert_file, read_info
from sprout.spec import parse_manifest
from sprout.state import StateStore


def test_certificate_files_are_installed_refreshed_reported_and_pruned(tmp_path: Path) -> None:
    ca = CertAuthority.create(tmp_path / "ca")
    app = tmp_path / "app"
    app.mkdir()
    key, chain, first = ca.leaf("*.example.test")
    (app / "key.pem").write_bytes(key)
    (app / "chain.pem").write_bytes(chain)
    manifest = parse_manifest(
        {
            "app": {"name": "shop", "web": "run"},
            "router": {"hosts": ["shop.example.test", "*.example.test"]},
            "tls": {"cert": "chain.pem", "key": "key.pem"},
        }
    )
    store = StateStore(tmp_path / "state.db")
    store.upsert_environment("shop", "production", manifest, app)
    folder = tmp_path / "tls"
    certs = Certificates(store, folder)

    certs.run_pass()
    for host in ("shop.example.test", "*.example.test"):
        path = cert_file(folder, host)
        assert path.stat().st_mode & 0o777 == 0o600
        info = read_info(path)
        assert info is not None and info.host == host and info.serial == first.serial_number
    assert [e.kind for e in store.list_events()].count("tls.installed") == 2

    # Replaced files are copied again; a missing one is one clear event, retried after RETRY_FIRST.
    key, chain, second = ca.leaf("*.example.test")
    (app / "key.pem").write_bytes(key)
    (app / "chain.pem").write_bytes(chain)
    certs.run_pass()
    info = read_info(cert_file(folder, "shop.example.test"))
    assert info is not None and info.serial == second.serial_number
    (app / "key.pem").unlink()
    certs.run_pass()
    certs.run_pass()
    failed = [e for e in store.list_events() if e.kind == "tls.failed"]
    assert len(failed) == 2  # one per host, not one per pass
    assert "key.pem" in failed[0].message and f"retrying in {RETRY_FIRST:.0f}s" in failed[0].message
    # The installed certificates keep serving meanwhile.
    assert cert_file(folder, "shop.example.test").exists()

    # No environment asks for TLS any more: the certificates go, so the router stops redirecting.
    store.upsert_environment("shop", "production", manifest.model_copy(update={"tls": None}), app)
    certs.run_pass()
    assert not list((folder / "certs").glob("*.pem"))
