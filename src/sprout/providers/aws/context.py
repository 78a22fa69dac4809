"""What one rendering of the template knows: manifest, environment, bundle, colours and names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from troposphere import Tags

from sprout.errors import UserError
from sprout.providers.aws.wheels import Runtime
from sprout.spec import Manifest
from sprout.spec.envname import check_env_name

Colour = Literal["blue", "green"]
COLOURS: tuple[Colour, Colour] = ("blue", "green")

#: The port the agent's app listens on inside an instance; the target groups forward to it.
APP_PORT = 8080
#: How many availability zones a created VPC spans (the reference system's "two data centres").
ZONE_COUNT = 2


def other(colour: Colour) -> Colour:
    """The colour that is not `colour`."""
    return "green" if colour == "blue" else "blue"


def title(colour: Colour) -> str:
    """A colour as it appears in logical ids: "Blue" or "Green"."""
    return colour.capitalize()


@dataclass(frozen=True)
class RenderContext:
    """The inputs of one template rendering."""

    manifest: Manifest
    env: str
    version_sha256: str
    bundle_bucket: str
    sprout_version: str
    runtime: Runtime
    live: Colour = "blue"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.version_sha256):
            raise UserError(
                f"aws template: bundle hash {self.version_sha256!r} is not a sha256; pack the app first"
            )
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", self.bundle_bucket):
            raise UserError(f"aws template: {self.bundle_bucket!r} is not an S3 bucket name")
        check_env_name(self.env, "aws template")

    @property
    def app(self) -> str:
        """The app's name."""
        return self.manifest.app.name

    @property
    def stack_name(self) -> str:
        """The CloudFormation stack of this environment."""
        return stack_name(self.app, self.env)

    @property
    def bundle_prefix(self) -> str:
        """The S3 key prefix of this app's store; bundles live under `<prefix>/bundles/`."""
        return self.app

    @property
    def store_url(self) -> str:
        """The artifact store URL the agent fetches bundles from."""
        return f"s3://{self.bundle_bucket}/{self.bundle_prefix}"

    @property
    def log_group(self) -> str:
        """The CloudWatch Logs group of this environment."""
        return f"/sprout/{self.app}/{self.env}"

    def tags(self, **extra: str) -> Tags:
        """The tags every resource carries: the manifest's `[aws] tags` plus Sprout's own."""
        merged = {**self.manifest.aws.tags, "sprout:app": self.app, "sprout:env": self.env, **extra}
        return Tags(merged)


def stack_name(app: str, env: str) -> str:
    """The stack name of an app environment: `sprout-<app>-<env>`."""
    return f"sprout-{app}-{env}"
