"""Request paths as written in manifests (`[health] path`, `[deploy] smoke_path`).

The router, the deploy engine and the providers' health checks put such a path into a request line as it
is (`GET <path> HTTP/1.1`), so it must be what RFC 9112 calls the origin-form: an absolute path and an
optional query, made of RFC 3986's characters only — letters, digits, `-._~`, the sub-delimiters
`!$&'()*+,;=`, `:`, `@`, `/` and `?` — and `%xx` escapes. Anything else (a space, a control character
such as CR or LF, `#`, a non-ASCII letter) would split or corrupt the request line, so it is refused with
the escape to write instead.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, ValidationInfo, WithJsonSchema

from sprout.spec.base import is_stored

_ALLOWED = "A-Za-z0-9\\-._~!$&'()*+,;=:@/?"
#: The whole origin-form (RFC 9112 section 3.2.1: absolute-path ["?" query]); also the JSON Schema pattern.
REQUEST_PATH = re.compile(f"^/(?:[{_ALLOWED}]|%[0-9A-Fa-f]{{2}})*$")
_CHAR = re.compile(f"[{_ALLOWED}]")
_ESCAPE = re.compile("%[0-9A-Fa-f]{2}")


def request_path_problem(path: str) -> str | None:
    """Why `path` cannot be sent as a request's path and query, or None when it can."""
    if not path.startswith("/"):
        return 'must start with "/"'
    if REQUEST_PATH.fullmatch(path):
        return None
    index = 0
    while index < len(path):
        char = path[index]
        if char == "%":
            if not _ESCAPE.match(path, index):
                return "'%' must start a %xx escape (write %25 for a literal %)"
            index += 3
            continue
        if char == "#":
            return "'#' starts a fragment, which a request never carries; remove it (or write %23)"
        if not _CHAR.fullmatch(char):
            escaped = "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
            return f"{char!r} must be percent-encoded as {escaped}"
        index += 1
    return None


def _checked(value: str, info: ValidationInfo) -> str:
    problem = request_path_problem(value)
    # A path stored by a Sprout from before this check keeps its environment readable, as it ran.
    if problem is not None and not is_stored(info):
        raise ValueError(f"{value!r} is not a valid request path: {problem}")
    return value


#: A path (and query) a request can carry, e.g. "/healthz" or "/status;v=2?full=1&x=%2F".
RequestPath = Annotated[
    str,
    StringConstraints(pattern=r"^/"),
    AfterValidator(_checked),
    WithJsonSchema({"type": "string", "pattern": REQUEST_PATH.pattern}),
]
