"""Environment names (`--env`): one rule for every provider, since a name becomes a host name label, a
folder of the home, a URL path segment of the API and part of AWS and Kubernetes resource names."""

from __future__ import annotations

import re

from sprout.errors import UserError

#: 1 to 20 lowercase letters, digits and inner dashes (a DNS label short enough for AWS's stack names).
ENV_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?")


def check_env_name(env: str, where: str = "--env") -> str:
    """`env` when it is a valid environment name; else a UserError naming `where` and the rule."""
    if not ENV_NAME.fullmatch(env):
        raise UserError(
            f"{where}: environment name {env!r} must be 1 to 20 lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit (it becomes a host name and a folder name)"
        )
    return env
