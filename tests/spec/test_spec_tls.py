"""The `[tls]` section: ACME by default, certificate files as a pair, errors that name the field."""

from __future__ import annotations

import pytest

from sprout.errors import UserError
from sprout.spec import parse_manifest
from sprout.spec.tls import LETS_ENCRYPT

APP = {"name": "shop", "web": "run"}


def test_an_empty_table_asks_lets_encrypt_and_no_table_means_no_tls() -> None:
    assert parse_manifest({"app": APP}).tls is None
    tls = parse_manifest({"app": APP, "tls": {}}).tls
    assert tls is not None and tls.acme_directory == LETS_ENCRYPT and not tls.from_files
    files = parse_manifest({"app": APP, "tls": {"cert": "c.pem", "key": "k.pem", "hsts": "1d"}}).tls
    assert files is not None and files.from_files and files.hsts == 86400


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        ({"cert": "c.pem"}, "cert is set without key"),
        ({"key": "k.pem"}, "key is set without cert"),
        ({"acme_directory": "http://acme.test/dir"}, "tls.acme_directory: "),
        ({"email": "not an address"}, "tls.email: "),
        ({"hsts": "soon"}, "tls.hsts: "),
        ({"acme": "x"}, "tls.acme: "),
    ],
)
def test_bad_tls_settings_name_the_field(tls: dict[str, str], message: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_manifest({"app": APP, "tls": tls})
    assert message in str(caught.value)
    assert "tls" in str(caught.value)
