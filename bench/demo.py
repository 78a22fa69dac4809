"""`make demo` on a fresh clone, the way a person runs it: time to the URL, then Ctrl-C.

Clones the repository (its committed HEAD) into a temporary folder, runs `make demo` there under a
pseudo-terminal (so make, the demo script and Ctrl-C behave as in a real terminal), times the first
`URL:` line, then types Ctrl-C (the byte a terminal sends) and waits for make to exit. Prints the time to
the URL, the teardown time, make's exit status and any line of noise (make's "Error"/"Interrupt", a
deprecation warning). The pip cache is whatever the machine has (warm on a developer's machine).

    python3 bench/demo.py [--source .] [--port 18080] [--keep]
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: What the whole demo may take before the figure is given up on.
TIMEOUT = 300.0
#: Lines that must not appear in a demo's output.
NOISE = re.compile(r"Error \d+|Interrupt|\*\*\*|[Dd]eprecat|Traceback")


def run_demo(folder: Path, port: int, timeout: float = TIMEOUT) -> dict[str, object]:
    """Run `make demo` in `folder` under a pty; the seconds to the URL and to exit, the status, the output."""
    started = time.monotonic()
    pid, master = pty.fork()
    if pid == 0:
        # As a terminal's shell starts a command: Ctrl-C's signal at its default, even when this script
        # runs as a background job (which inherits SIGINT ignored, and bash cannot trap an ignored signal).
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        os.chdir(folder)
        os.execvp("make", ["make", "--no-print-directory", "demo", f"PORT={port}"])
    output = b""
    url_at: float | None = None
    exited_at: float | None = None
    status = None
    deadline = started + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                output += chunk
                if url_at is None and b"URL: " in output and b"press Ctrl-C" in output:
                    url_at = time.monotonic()
                    # The terminal's Ctrl-C: the line discipline turns it into SIGINT for the foreground.
                    os.write(master, b"\x03")
        _done, status = os.waitpid(pid, 0)
        exited_at = time.monotonic()
    finally:
        if exited_at is None:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
    return {
        "url_seconds": None if url_at is None else url_at - started,
        "teardown_seconds": None if url_at is None or exited_at is None else exited_at - url_at,
        "exit_code": None if status is None else os.waitstatus_to_exitcode(status),
        "output": output.decode(errors="replace"),
    }


def main() -> int:
    """Clone, run, print the figures; exit 1 unless the URL came, make exited 0 and nothing was noisy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(REPO), help="the repository to clone (its HEAD)")
    parser.add_argument("--port", type=int, default=18080)
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sprout-demo-clone-"))
    # Like a clone in a shared folder: under root the app runs as a user of its own, who must reach the
    # clone's interpreter (mkdtemp makes the folder 0700).
    folder.chmod(0o755)
    try:
        subprocess.run(["git", "clone", "--quiet", args.source, str(folder)], check=True)
        result = run_demo(folder, args.port)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    noise = [line for line in str(result["output"]).splitlines() if NOISE.search(line)]
    print(str(result["output"]).rstrip())
    print("---")
    url = result["url_seconds"]
    print(f"fresh clone to URL: {url:.1f} s" if isinstance(url, float) else "no URL")
    teardown = result["teardown_seconds"]
    if isinstance(teardown, float):
        print(f"Ctrl-C to exit: {teardown:.1f} s, make exit status {result['exit_code']}")
    print(f"noise lines: {noise or 'none'}")
    return 0 if url is not None and result["exit_code"] == 0 and not noise else 1


if __name__ == "__main__":
    sys.exit(main())
