"""What never reaches AWS: an address of the operator's own machine (127.0.0.1, localhost, ::1, 0.0.0.0).

`[resources.*] url` values are the one-machine provider's; on AWS a local one is replaced by the
stack's own service (RDS, ElastiCache), an external one is used as given. Anything else local that
would be handed to the instances (an `[env]` value) is a mistake the render refuses, naming the key.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from sprout.errors import UserError
from sprout.spec import Manifest

_LOCAL = re.compile(
    r"(?<![\w.-])(localhost|[\w-]+\.localhost|127(?:\.\d{1,3}){3}|0\.0\.0\.0|\[?::1\]?)(?![\w.-])"
)


def is_local_url(url: str) -> bool:
    """Whether a service URL points at this machine."""
    host = (urlparse(url).hostname or "").lower()
    return bool(_LOCAL.fullmatch(host)) or host == "::1"


def check_no_local_addresses(manifest: Manifest) -> None:
    """Refuse a manifest that would hand the instances an address of this machine."""
    for name, value in sorted(manifest.env.items()):
        found = _LOCAL.search(value)
        if found:
            raise UserError(
                f"[env] {name}: {found.group(0)} is this machine, not an address AWS can reach; "
                "remove it (the stack's DATABASE_URL and SESSION_STORE_URL come from its own services) "
                "or give a host the instances reach"
            )
