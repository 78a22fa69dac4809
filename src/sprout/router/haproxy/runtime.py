"""HAProxy's runtime API ("Unix Socket commands" of its management guide): one command per connection.

The API reads a line of words separated by spaces or tabs; an unescaped `;` starts another command, and a
line ending in `<<` opens a multi-line payload. So every word Sprout sends goes through `command()`: a
backslash before each `\\`, `;`, space, tab and `<` makes HAProxy take it literally (its parser drops the
backslash). Nothing can carry a line end (CR is dropped, LF ends the command) or a NUL (it ends the word):
a value holding one is refused, naming it, before anything is sent.
"""

from __future__ import annotations

import csv
import io
import re
import socket
from pathlib import Path

from sprout.errors import ServiceError

#: `add server` and `del server` answer a line; every other command used answers nothing on success.
_DONE = ("New server registered.", "Server deleted.")
#: Characters HAProxy's CLI parser reads specially inside a word, each sent after a backslash.
_SPECIAL = re.compile(r"([\\; \t<])")
#: Characters no escaping carries.
_UNSENDABLE = re.compile(r"[\r\n\x00]")
_WHITESPACE = re.compile(r"\s")


def unsendable(value: str) -> bool:
    """Whether `value` holds a character no escaping carries."""
    return _UNSENDABLE.search(value) is not None


def word(value: str) -> str:
    """One word of a command, escaped; ServiceError for one that cannot be sent (empty, CR, LF, NUL)."""
    if not value or _UNSENDABLE.search(value):
        raise ServiceError(
            f"haproxy runtime API: the value {value!r} cannot be sent "
            "(it is empty or holds a line end or NUL); remove that character from the routing table"
        )
    return _SPECIAL.sub(r"\\\1", value)


def command(*words: str) -> str:
    """A command line of `words`, each escaped (see `word`)."""
    return " ".join(word(w) for w in words)


class RuntimeApi:
    """Sends commands to the HAProxy listening on `path`; an answer that reports a failure raises."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def ask(self, line: str) -> str:
        """The raw answer to one command line, as built by `command()` (or a fixed command such as
        `show info`); ServiceError when the socket cannot be reached or the line holds a line end."""
        if _UNSENDABLE.search(line):
            raise ServiceError(
                f"haproxy runtime API: {line!r} holds a line end or NUL; build it with command()"
            )
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ServiceError(
                f"haproxy runtime API at {self.path}: cannot reach it ({exc}); is the HAProxy engine running?"
            ) from exc
        return b"".join(chunks).decode("utf-8", "replace")

    def run(self, *words: str) -> None:
        """Run a command that changes something; ServiceError carrying HAProxy's answer when it fails."""
        line = command(*words)
        answer = self.ask(line).strip()
        if answer and answer not in _DONE:
            raise ServiceError(f"haproxy: `{line}` failed: {answer.splitlines()[0]}")

    def table(self, *words: str) -> list[dict[str, str]]:
        """The rows of a command answering a `# header` line and then rows (CSV or space separated)."""
        text = self.ask(command(*words))
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines or not lines[0].startswith("#"):
            return []
        header = lines[0].lstrip("# ")
        if "," in header:
            return list(csv.DictReader(io.StringIO("\n".join([header, *lines[1:]]))))
        names = header.split()
        return [
            dict(zip(names, line.split(), strict=False)) for line in lines[1:] if not line.startswith("#")
        ]

    def _map_rows(self, path: Path) -> list[tuple[str, str, str]]:
        """A runtime map's entries as (reference, key, value), in HAProxy's order."""
        rows = []
        for line in self.ask(command("show", "map", str(path))).splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0].startswith("0x"):
                rows.append((parts[0], parts[1], parts[2]))
        return rows

    def map_entries(self, path: Path) -> dict[str, str]:
        """A runtime map's entries, key → value."""
        return {key: value for _, key, value in self._map_rows(path)}

    def sync_map(self, path: Path, wanted: dict[str, str]) -> None:
        """Make a runtime map hold exactly `wanted`: additions and changes first, removals last.

        Entries are changed and removed by their reference (`#0x…`), so a key is never read as one.
        A key with whitespace is refused: `show map` could not tell where it ends.
        """
        for key, value in wanted.items():
            word(value)
            if _WHITESPACE.search(key):
                raise ServiceError(
                    f"haproxy map {path.name}: the key {key!r} holds whitespace; it cannot be a key"
                )
            word(key)
        seen: set[str] = set()
        extra = []
        for ref, key, value in self._map_rows(path):
            if key not in wanted or key in seen:
                extra.append(ref)
            elif value != wanted[key]:
                self.run("set", "map", str(path), f"#{ref}", wanted[key])
            seen.add(key)
        for key, value in wanted.items():
            if key not in seen:
                self.run("add", "map", str(path), key, value)
        for ref in extra:
            self.run("del", "map", str(path), f"#{ref}")
