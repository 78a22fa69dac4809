"""Text from apps made safe for a terminal: escape sequences and control characters removed."""

from __future__ import annotations

import re

# ESC- and C1-introduced sequences first (CSI with its parameters, OSC/DCS/APC/PM/SOS strings up to their
# terminator or the end), so no parameter bytes are left behind; then any other C0 (except \n and \t),
# DEL or C1 character on its own.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c\n]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def printable(text: str) -> str:
    """`text` without ANSI/OSC escape sequences and control characters other than newline and tab."""
    return _SEQUENCE.sub("", text)
