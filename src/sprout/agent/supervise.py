"""Supervise the app's `web` process: run it, pump its output, forward stop signals, exit with it.

The shape follows uvicorn's supervisor: the app runs through `sh -c` in its own process group so a
signal reaches every process it started; SIGTERM or SIGINT to the agent is forwarded to that group and
arms a timer of `grace` seconds, after which the group gets SIGKILL. When the app exits, for whatever
reason, anything left in its group is killed and the agent returns the app's exit status.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Callable, Mapping
from types import FrameType

#: Shell syntax beyond one simple command (lists, pipes, subshells, redirections, leading assignments).
_COMPOUND = re.compile(r"[;&|()<>`\n]|\$\(|^\s*([!{]|\w+=|(exec|if|for|while|until|case)\b)")
#: How long to wait for the output pumps to finish after the app's group is gone.
PUMP_JOIN_TIMEOUT = 2.0


def shell_command(command: str) -> list[str]:
    """The argv that runs `command` the way a Procfile line runs: `sh -c`, a simple command exec'd."""
    # Like bash, let a simple command replace the shell: the app is then the direct child, so it gets
    # signals first-hand and its own exit status is the one reported (dash would fork and wait).
    if not _COMPOUND.search(command):
        command = f"exec {command}"
    return ["sh", "-c", command]


def exit_status(returncode: int) -> int:
    """A process's exit status as a shell reports it: the code, or 128 + the signal that killed it."""
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    """Runs one `web` command until it exits; stop() asks it to stop gracefully, then forcefully."""

    def __init__(
        self,
        command: str,
        *,
        cwd: str,
        env: Mapping[str, str],
        grace: float,
        emit: Callable[[str, str], None],
        user: tuple[int, int] | None = None,
    ) -> None:
        self.command = command
        self.user = user
        self.cwd = cwd
        self.env = dict(env)
        self.grace = grace
        self.emit = emit
        self._proc: subprocess.Popen[bytes] | None = None
        self._requested: int | None = None
        self._forwarded = False
        self._previous_alarm: signal._HANDLER = signal.SIG_DFL

    def run(self) -> int:
        """Start the app, wait for it to exit, and return its exit status."""
        self.start()
        return self.wait()

    def start(self) -> None:
        """Start the app; its output waits in the pipes until wait() pumps it."""
        self._previous_alarm = signal.signal(signal.SIGALRM, self._on_grace_over)
        proc = subprocess.Popen(
            shell_command(self.command),
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            process_group=0,
            # (uid, gid): the app drops to its own user; no supplementary groups of the agent follow it.
            user=self.user[0] if self.user is not None else None,
            group=self.user[1] if self.user is not None else None,
            extra_groups=[] if self.user is not None else None,
        )
        self._proc = proc
        self.emit("system", f"web started (pid {proc.pid}): {self.command}")
        if self._requested is not None:
            self._forward()

    def wait(self) -> int:
        """Pump the app's output until it exits; clean up its group and return its exit status."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("Supervisor.wait() called before start()")
        # Imported only now: the app is already booting while the agent loads the rest of itself.
        from sprout.agent.pump import pump_lines

        threads = pump_lines(proc, self.emit)
        try:
            returncode = proc.wait()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous_alarm)
            # A web command's leftovers (workers, a backgrounded helper) never outlive it.
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
        for thread in threads:
            thread.join(PUMP_JOIN_TIMEOUT)
        status = exit_status(returncode)
        how = f"signal {signal.Signals(-returncode).name}" if returncode < 0 else f"code {returncode}"
        self.emit("system", f"web exited with {how}")
        return status

    def stop(self, signum: int) -> None:
        """Forward `signum` to the app's group and SIGKILL the group if it is still there after grace."""
        if self._requested is None:
            self._requested = signum
        # A signal that arrives before the app is started is forwarded by run() right after it starts.
        if self._proc is not None:
            self._forward()

    def _forward(self) -> None:
        proc, signum = self._proc, self._requested
        if proc is None or signum is None or self._forwarded:
            return
        self._forwarded = True
        self.emit(
            "system", f"received {signal.Signals(signum).name}: stopping the app (grace {self.grace:g}s)"
        )
        _signal_group(proc.pid, signum)
        signal.setitimer(signal.ITIMER_REAL, max(self.grace, 0.001))

    def _on_grace_over(self, signum: int, frame: FrameType | None) -> None:
        proc = self._proc
        if proc is not None:
            self.emit("system", f"grace of {self.grace:g}s is over: killing the app (SIGKILL)")
            _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    """Send `signum` to a process group that may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
