"""What one rendering knows: manifest, environment, version, bundle, image, namespace, names and labels."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sprout import __version__
from sprout.errors import UserError
from sprout.spec import Manifest
from sprout.spec.envname import check_env_name

Colour = Literal["blue", "green"]
COLOURS: tuple[Colour, Colour] = ("blue", "green")

#: The port the agent's app listens on inside a pod; the Services forward port 80 to it.
APP_PORT = 8080
#: The image every pod runs: python:3.11-slim with `sprout[kubernetes]` installed (docs/kubernetes.md).
DEFAULT_IMAGE = f"sprout:{__version__}-python3.11-slim"
#: Where the agent reads its instance spec (written by the init container) and the ConfigMap's template.
SPEC_FILE = "/etc/sprout/spec.json"
SPEC_TEMPLATE_DIR = "/etc/sprout-config"
#: The per-version bundle cache inside a pod (an emptyDir: each pod bootstraps once, like an instance).
CACHE_DIR = "/var/lib/sprout/cache"
#: The label that names a Deployment's colour; the live Service selects on it.
COLOUR_LABEL = "sprout.dev/color"
#: The node label spread constraints use, and the pod label KEP-4742 copies it to (when enabled).
ZONE_LABEL = "topology.kubernetes.io/zone"

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_VERSION_LABEL = re.compile(r"^v[0-9]+$")


def other(colour: Colour) -> Colour:
    """The colour that is not `colour`."""
    return "green" if colour == "blue" else "blue"


@dataclass(frozen=True)
class Names:
    """The object names of one app environment: what a release switches between."""

    app: str
    namespace: str

    def deployment(self, colour: Colour) -> str:
        """The Deployment (and ConfigMap) of one colour: `<app>-blue` or `<app>-green`."""
        return f"{self.app}-{colour}"

    def service(self, preview: bool = False) -> str:
        """`<app>` carries live traffic; `<app>-preview` reaches the idle colour for checks before a swap."""
        return f"{self.app}-preview" if preview else self.app

    @property
    def hpa(self) -> str:
        """The HorizontalPodAutoscaler (scheduled scaling may patch exactly this one)."""
        return self.app


@dataclass(frozen=True)
class RenderContext:
    """The inputs of one rendering, checked once so the builders can trust them."""

    manifest: Manifest
    env: str
    version: str
    bundle_sha256: str
    store_url: str
    image: str
    namespace: str
    live: Colour = "blue"
    secret_name: str | None = None

    def __post_init__(self) -> None:
        check_env_name(self.env, "kubernetes render")
        if not _SHA256.match(self.bundle_sha256):
            raise UserError(
                f"kubernetes render: bundle hash {self.bundle_sha256!r} is not a sha256; push the app first"
            )
        if not _VERSION_LABEL.match(self.version):
            raise UserError(f"kubernetes render: version {self.version!r} is not a label such as v3")
        if not _DNS_LABEL.match(self.namespace):
            raise UserError(
                f"kubernetes render: namespace {self.namespace!r} must be a DNS label "
                "(lowercase letters, digits, dashes; at most 63 characters)"
            )
        if not self.store_url:
            raise UserError(
                "kubernetes render: no artifact store URL; give --store-url (e.g. s3://bucket/app)"
            )
        if not self.image or any(c.isspace() for c in self.image):
            raise UserError(f"kubernetes render: image {self.image!r} is not an image reference")
        if self.secret_name is not None and not _DNS_LABEL.match(self.secret_name):
            raise UserError(f"kubernetes render: secret name {self.secret_name!r} must be a DNS label")

    @property
    def app(self) -> str:
        """The app's name; every object's name starts with it."""
        return self.manifest.app.name

    @property
    def secret(self) -> str:
        """The pre-existing Secret the pods read `[secrets]` from: given, or `<app>-secrets`."""
        return self.secret_name or f"{self.app}-secrets"

    @property
    def names(self) -> Names:
        """The names of this environment's objects."""
        return Names(self.app, self.namespace)

    @property
    def hpa_name(self) -> str:
        """The HorizontalPodAutoscaler's name."""
        return self.names.hpa

    def deployment_name(self, colour: Colour) -> str:
        """The Deployment (and ConfigMap) of one colour."""
        return self.names.deployment(colour)

    def labels(self, **extra: str) -> dict[str, str]:
        """The labels every object carries, plus `extra`."""
        return {
            "app.kubernetes.io/name": self.app,
            "app.kubernetes.io/instance": f"{self.app}-{self.env}",
            "app.kubernetes.io/managed-by": "sprout",
            "sprout.dev/app": self.app,
            "sprout.dev/env": self.env,
            **extra,
        }

    def selector(self, colour: Colour | None = None) -> dict[str, str]:
        """The labels that select this environment's pods (one colour's when given)."""
        selected = {"sprout.dev/app": self.app, "sprout.dev/env": self.env}
        if colour is not None:
            selected[COLOUR_LABEL] = colour
        return selected
