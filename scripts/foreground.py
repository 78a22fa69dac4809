"""Run a command as the terminal's foreground process group, so Ctrl-C reaches it and not `make`.

`make demo` runs `scripts/demo.sh`, which tears the demo down on Ctrl-C and exits 0. The terminal sends
SIGINT to its whole foreground process group, GNU make included, and make answers it with "Interrupt"
and exit 130 whatever the script does. So the script runs in a process group of its own that holds the
terminal while it runs; this process waits in the background, hands the terminal back to its own group
afterwards and exits with the script's status. Without a terminal the command simply runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main(argv: list[str]) -> int:
    """Run `argv` in the foreground of the controlling terminal; its exit status (128+N for signal N)."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        tty = -1
    if tty < 0 or os.tcgetpgrp(tty) != os.getpgrp():
        # No terminal, or we do not hold it (a background job): nothing to hand over.
        os.execvp(argv[0], argv)
    # Taking the terminal back from the background is what SIGTTOU would stop us for.
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(tty, os.getpgrp())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.close(tty)
        os.execvp(argv[0], argv)
    # Either side may win the race to set the group; both setting it is harmless.
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)
    with contextlib.suppress(OSError):
        os.tcsetpgrp(tty, pid)
    while True:
        _, status = os.waitpid(pid, os.WUNTRACED)
        if not os.WIFSTOPPED(status):
            break
        # Ctrl-Z stopped the command: stop as a whole job, as the shell expects of make, and on `fg`
        # hand the terminal back to the command and let it go on.
        os.tcsetpgrp(tty, os.getpgrp())
        os.kill(0, signal.SIGTSTP)
        os.tcsetpgrp(tty, pid)
        os.killpg(pid, signal.SIGCONT)
    os.tcsetpgrp(tty, os.getpgrp())
    os.close(tty)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
