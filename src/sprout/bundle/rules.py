"""What a version bundle may hold: one set of path, size and count rules for `sprout push` and for unpack.

Pack refuses what unpack would refuse, with the same words, so a version that no instance could unpack
is never pushed. Each rule returns the problem as text (None when the entry is fine); `refusal` frames
it the same way for both sides.
"""

from __future__ import annotations

import re

MAX_TOTAL_BYTES = 1024**3
MAX_ENTRIES = 50_000
MAX_FILE_BYTES = 512 * 1024**2
#: Longest path (UTF-8 bytes) and longest single name in it; the name limit is every Linux filesystem's.
MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
_DRIVE = re.compile(r"^[A-Za-z]:")
# C0 controls, DEL and C1 controls: they break logs and terminals, and newline splits line-based tools.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def refusal(name: str, problem: str) -> str:
    """The words both sides use for a refused entry."""
    return f"entry {name!r}: {problem}"


def path_problem(name: str) -> str | None:
    """What is wrong with a bundle path (posix, relative to the app root), or None."""
    if not name:
        return "has an empty path"
    if name.startswith("/"):
        return "has an absolute path"
    if "\\" in name:
        return "has a backslash in its path"
    if _DRIVE.match(name):
        return "has a drive letter in its path"
    if _CONTROL.search(name):
        return "has a control character in its path"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "has a path that is not valid UTF-8"
    if len(encoded) > MAX_PATH_BYTES:
        return f"has a path longer than {MAX_PATH_BYTES} bytes"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        return "has a '..' component in its path"
    if not parts:
        return "names the bundle root itself"
    if any(len(part.encode("utf-8")) > MAX_NAME_BYTES for part in parts):
        return f"has a name longer than {MAX_NAME_BYTES} bytes in its path"
    return None


def size_problem(size: int, total_before: int, max_file_bytes: int, max_total_bytes: int) -> str | None:
    """What is wrong with a file of `size` bytes after `total_before` bytes of earlier files, or None."""
    if size > max_file_bytes:
        return f"is {size} bytes, over the per-file limit of {max_file_bytes}"
    if total_before + size > max_total_bytes:
        return f"takes the unpacked size over the limit of {max_total_bytes} bytes"
    return None


def count_problem(entries: int, max_entries: int) -> str | None:
    """What is wrong with being entry number `entries` of a bundle, or None."""
    if entries > max_entries:
        return f"is one entry too many (more than {max_entries}); bundle fewer files"
    return None
