"""The CLI's consoles: wrapped for a terminal, whole lines for a pipe or a file (grep, copy-paste)."""

from __future__ import annotations

from rich.console import Console


def cli_console(stderr: bool = False) -> Console:
    """A console that wraps at the terminal's width, and never wraps when its output is not a terminal."""
    # No emoji codes: a log line or a manifest value holding `:thumbs_up:` is printed as it is written.
    console = Console(highlight=False, emoji=False, stderr=stderr)
    if not console.is_terminal:
        # Rich would wrap at 80 columns: a piped line must stay one line, and a table as wide as it is.
        console.soft_wrap = True
        console.width = 100_000
    return console
