"""HAProxy's runtime API ("Unix Socket commands" of its management guide): one command per connection."""

from __future__ import annotations

import csv
import io
import socket
from pathlib import Path

from sprout.errors import ServiceError

#: `add server` and `del server` answer a line; every other command used answers nothing on success.
_DONE = ("New server registered.", "Server deleted.")


class RuntimeApi:
    """Sends commands to the HAProxy listening on `path`; an answer that reports a failure raises."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout

    def ask(self, command: str) -> str:
        """The raw answer to one command; ServiceError when the socket cannot be reached."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(command.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise ServiceError(
                f"haproxy runtime API at {self.path}: cannot reach it ({exc}); is the HAProxy engine running?"
            ) from exc
        return b"".join(chunks).decode("utf-8", "replace")

    def run(self, command: str) -> None:
        """Run a command that changes something; ServiceError carrying HAProxy's answer when it fails."""
        answer = self.ask(command).strip()
        if answer and answer not in _DONE:
            raise ServiceError(f"haproxy: `{command}` failed: {answer.splitlines()[0]}")

    def table(self, command: str) -> list[dict[str, str]]:
        """The rows of a command answering a `# header` line and then rows (CSV or space separated)."""
        text = self.ask(command)
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

    def map_entries(self, path: Path) -> dict[str, str]:
        """A runtime map's entries, key → value."""
        entries = {}
        for line in self.ask(f"show map {path}").splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0].startswith("0x"):
                entries[parts[1]] = parts[2]
        return entries

    def sync_map(self, path: Path, wanted: dict[str, str]) -> None:
        """Make a runtime map hold exactly `wanted`: additions and changes first, removals last."""
        current = self.map_entries(path)
        for key, value in wanted.items():
            if key not in current:
                self.run(f"add map {path} {key} {value}")
            elif current[key] != value:
                self.run(f"set map {path} {key} {value}")
        for key in current.keys() - wanted.keys():
            self.run(f"del map {path} {key}")
