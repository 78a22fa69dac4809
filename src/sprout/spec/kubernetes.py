"""The `[kubernetes]` section: what `sprout k8s` renders with unless a command-line option says otherwise."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from sprout.spec.base import Section

# A DNS label (RFC 1123), as Kubernetes requires of namespace and Secret names.
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
#: Stands for the environment's name in `namespace`, so one manifest serves staging and production.
ENV_PLACEHOLDER = "{env}"


class KubernetesSection(Section):
    """Settings for `sprout k8s`; every key optional, every one overridden by its command-line option."""

    image: str | None = Field(
        None,
        description="The container image with Sprout's agent (default: sprout:<version>-python3.11-slim).",
    )
    namespace: str | None = Field(
        None, description='The namespace; "{env}" stands for the environment (default: <app>-<env>).'
    )
    secret_name: str | None = Field(
        None, description="The pre-existing Secret the pods read [secrets] from (default: <app>-secrets)."
    )
    tls_secret: str | None = Field(
        None,
        description="With [tls]: the Secret (type kubernetes.io/tls) the Ingress serves (default: <app>-tls).",
    )
    cert_manager_issuer: str | None = Field(
        None, description="With [tls]: the cert-manager ClusterIssuer that fills `tls_secret` by ACME."
    )

    @field_validator("image")
    @classmethod
    def _valid_image(cls, value: str | None) -> str | None:
        if value is not None and (not value or any(c.isspace() for c in value)):
            raise ValueError(f"{value!r} is not an image reference (e.g. registry.example.com/sprout:0.1.0)")
        return value

    @field_validator("namespace")
    @classmethod
    def _valid_namespace(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.fullmatch(value.replace(ENV_PLACEHOLDER, "production")):
            raise ValueError(
                f"{value!r} is not a DNS label (lowercase letters, digits, dashes; at most 63 characters; "
                '"{env}" may stand for the environment)'
            )
        return value

    @field_validator("secret_name", "tls_secret", "cert_manager_issuer")
    @classmethod
    def _valid_secret_name(cls, value: str | None) -> str | None:
        if value is not None and not _DNS_LABEL.fullmatch(value):
            raise ValueError(f"{value!r} is not a DNS label (lowercase letters, digits, dashes)")
        return value

    def namespace_for(self, env: str) -> str | None:
        """The namespace of environment `env`, or None when the manifest names none."""
        return None if self.namespace is None else self.namespace.replace(ENV_PLACEHOLDER, env)
