"""The `[tls]` section: HTTPS for the app's `[router] hosts`, by ACME (the default) or from certificate files."""

from __future__ import annotations

from typing import Self

from pydantic import Field, field_validator, model_validator

from sprout.spec.base import Section
from sprout.spec.units import Duration

#: Let's Encrypt's production ACME directory, where certificates come from unless the manifest says otherwise.
LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"


class TlsSection(Section):
    """HTTPS for every host of the app: a certificate per host from an ACME server, or one given as files."""

    acme_directory: str = Field(LETS_ENCRYPT, description="The ACME server's directory URL (https).")
    acme_ca_bundle: str | None = Field(
        None,
        description="PEM file of extra CA certificates trusted for the ACME server's own HTTPS (test servers).",
    )
    email: str | None = Field(None, description="Contact address of the ACME account (expiry notices).")
    cert: str | None = Field(
        None,
        description="Certificate chain file (PEM), relative to sprout.toml; instead of ACME, with `key`.",
    )
    key: str | None = Field(None, description="Private key file (PEM) of `cert`, relative to sprout.toml.")
    hsts: Duration | None = Field(
        None,
        description='Send Strict-Transport-Security with this max-age over HTTPS (e.g. "365d"); off if unset.',
    )

    @field_validator("acme_directory")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError(f"{value!r} is not an https:// URL (ACME directories are served over HTTPS)")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and (value.count("@") != 1 or any(c.isspace() for c in value)):
            raise ValueError(f"{value!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _files_or_acme(self) -> Self:
        if (self.cert is None) != (self.key is None):
            given, missing = ("cert", "key") if self.key is None else ("key", "cert")
            raise ValueError(f"{given} is set without {missing}; give both files or neither (ACME)")
        return self

    @property
    def from_files(self) -> bool:
        """Whether the certificate comes from files rather than from the ACME server."""
        return self.cert is not None
