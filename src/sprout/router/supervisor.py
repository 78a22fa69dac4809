"""The router's supervisor: it holds the listening sockets and keeps one worker serving them.

nginx's master/worker shape. The supervisor binds the traffic and admin sockets once and starts a worker
(`python -m sprout.router.worker`) on them. When the worker dies (kill -9, a crash) a new one starts at
once on the same sockets: connections that arrive meanwhile wait in the kernel's backlog instead of being
refused, and only the requests the dead worker was serving are lost. A worker that answers no probe of
its admin `/healthz` for `HANG_TIMEOUT` (stopped, stuck) is killed and replaced the same way. A worker
that keeps dying is restarted with a growing delay. SIGTERM/SIGINT close the traffic socket (new
connections are refused from then on), let the worker finish its in-flight requests, and exit.

Small on purpose: no asyncio, nothing of the proxy imported, every pass of its loop guarded.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback

from sprout.errors import UserError
from sprout.router.options import ADMIN_BACKLOG, BACKLOG, Options, bind, options_from, parser

#: Seconds between liveness probes of a worker's admin `/healthz`.
PROBE_INTERVAL = 0.5
#: A worker that has served and then answers no probe for this long is hung: killed and replaced.
HANG_TIMEOUT = 3.0
#: A new worker must answer its first probe within this (imports on a loaded machine are slow).
START_TIMEOUT = 30.0
#: A worker that lived this long ends a crash loop: the next one after it starts without delay.
STABLE_AFTER = 10.0
#: Delay before the second quick restart in a row, doubled each time up to BACKOFF_MAX.
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 10.0
#: Seconds given beyond the worker's own shutdown timeout before it is killed on stop.
STOP_MARGIN = 5.0
#: A worker that exits 2 before it ever served was refused its options or files; a restart cannot help.
USER_ERROR_EXIT = 2
#: Longest sleep of the loop without any event, so that a lost wake-up costs at most this.
_TICK = 1.0
#: A pass that comes this long after the previous one means the supervisor itself did not run.
_FROZEN_AFTER = _TICK + 1.0
_PROBE = b"GET /healthz HTTP/1.1\r\nHost: supervisor\r\nConnection: close\r\n\r\n"


def say(message: str) -> None:
    """One line in the router log (stderr); never raises."""
    try:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        sys.stderr.write(f"{stamp} sprout.router.supervisor {message}\n")
        sys.stderr.flush()
    except Exception:
        pass  # a log line is not worth the supervisor's life


class Worker:
    """One started worker process and the state of its liveness probe."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.started = time.monotonic()
        self.ready = False
        self.killed = False
        self.answered = self.started
        self.next_probe = self.started
        self.probe: socket.socket | None = None
        self.reply = b""

    def close_probe(self) -> None:
        """Drop the probe connection in flight, if any."""
        if self.probe is not None:
            self.probe.close()
            self.probe = None
            self.reply = b""


class Supervisor:
    """Keeps one worker serving the sockets until told to stop; `run` returns the exit code."""

    def __init__(
        self,
        options: Options,
        argv: list[str],
        listen: socket.socket,
        admin: socket.socket,
        https: socket.socket | None = None,
    ) -> None:
        self.options = options
        self.argv = argv
        self.listen = listen
        self.admin = admin
        self.https = https
        self.worker: Worker | None = None
        self.stopping = False
        self.exit_code = 0
        #: Quick deaths in a row (a worker that lived STABLE_AFTER resets it).
        self.failures = 0
        self.start_at = 0.0
        self._seen = time.monotonic()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def run(self) -> int:
        """Supervise until SIGTERM/SIGINT (or a worker refused its options), then stop the worker."""
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        while not self.stopping:
            try:
                self._pass()
            except Exception:
                # Whatever went wrong, the worker keeps serving; log it and try again shortly.
                say("error in the supervisor loop (carrying on):\n" + traceback.format_exc())
                time.sleep(0.2)
        return self._shutdown()

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _pass(self) -> None:
        now = time.monotonic()
        if self.worker is None and now >= self.start_at:
            self._start(now)
        worker = self.worker
        waits = [self._wake_r]
        timeout = min(_TICK, max(0.0, self.start_at - now)) if worker is None else _TICK
        if worker is not None:
            if worker.probe is None:
                timeout = min(timeout, max(0.0, worker.next_probe - now))
            else:
                waits.append(worker.probe.fileno())
                if not worker.killed:
                    timeout = min(timeout, max(0.0, self._probe_deadline(worker) - now))
        readable, _, _ = select.select(waits, [], [], timeout)
        if self._wake_r in readable:
            self._drain_wakeups()
        now, seen = time.monotonic(), self._seen
        self._seen = now
        if worker is None:
            return
        if now - seen > _FROZEN_AFTER and worker.ready:
            # The supervisor was stopped or starved along with its worker (SIGSTOP of the whole router, a
            # paused machine): the worker's silence was not its own, so it gets a fresh HANG_TIMEOUT.
            worker.close_probe()
            worker.answered = worker.next_probe = now
        if worker.proc.poll() is not None:
            self._exited(worker, now)
            return
        if worker.probe is not None and worker.probe.fileno() in readable:
            self._read_probe(worker, now)
        if worker.probe is None and now >= worker.next_probe:
            self._send_probe(worker, now)
        if now >= self._probe_deadline(worker) and not worker.killed:
            if worker.ready:
                why = f"answered no probe for {now - worker.answered:.1f}s (hung)"
            else:
                why = f"did not come up within {START_TIMEOUT:.0f}s"
            say(f"worker pid {worker.proc.pid} {why}; killing it and starting a new one")
            worker.proc.kill()
            worker.killed = True

    def _drain_wakeups(self) -> None:
        """Empty the signal wake-up pipe (its bytes only mean "look again")."""
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    def _probe_deadline(self, worker: Worker) -> float:
        """When the worker counts as hung: HANG_TIMEOUT after its last answer (START_TIMEOUT at first)."""
        return worker.answered + (HANG_TIMEOUT if worker.ready else START_TIMEOUT)

    def _start(self, now: float) -> None:
        fds: tuple[int, ...] = (self.listen.fileno(), self.admin.fileno())
        cmd = [
            sys.executable, "-m", "sprout.router.worker",
            "--listen-fd", str(fds[0]), "--admin-fd", str(fds[1]), "--supervisor", str(os.getpid()),
            *self.argv,
        ]  # fmt: skip
        if self.https is not None:
            fds += (self.https.fileno(),)
            cmd += ["--https-fd", str(fds[2])]
        try:
            self.worker = Worker(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, pass_fds=fds))
        except OSError as exc:
            self.start_at = now + self._backoff()
            say(f"cannot start a worker ({exc}); trying again in {self.start_at - now:.2f}s")
            return
        say(f"worker pid {self.worker.proc.pid} started")

    def _backoff(self) -> float:
        """The delay before the next start: none after a stable worker, then doubling per quick death."""
        delay = 0.0 if self.failures == 0 else min(BACKOFF_FIRST * 2 ** (self.failures - 1), BACKOFF_MAX)
        self.failures += 1
        return delay

    def _exited(self, worker: Worker, now: float) -> None:
        worker.close_probe()
        self.worker = None
        code = worker.proc.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        lived = now - worker.started
        if code == USER_ERROR_EXIT and not worker.ready:
            say(f"worker pid {worker.proc.pid} {how} before serving (see its error above); stopping")
            self.exit_code = USER_ERROR_EXIT
            self.stopping = True
            return
        if lived >= STABLE_AFTER:
            self.failures = 0
        delay = self._backoff()
        self.start_at = now + delay
        later = f" in {delay:.2f}s (crash loop)" if delay else ""
        say(f"worker pid {worker.proc.pid} {how} after {lived:.1f}s; starting a new one{later}")

    def _send_probe(self, worker: Worker, now: float) -> None:
        host, port = self.admin.getsockname()[:2]
        worker.next_probe = now + PROBE_INTERVAL
        try:
            probe = socket.socket(self.admin.family, socket.SOCK_STREAM)
        except OSError as exc:
            # Our own failure (out of file descriptors): no verdict on the worker, which may serve well.
            say(f"cannot probe worker pid {worker.proc.pid} ({exc}); not counting it against the worker")
            worker.answered = now
            return
        try:
            # The supervisor owns the listener: the kernel completes the handshake even if the worker
            # is stuck, so only the answer tells whether it serves.
            probe.settimeout(0.25)
            probe.connect(("127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host, port))
            probe.sendall(_PROBE)
            probe.setblocking(False)
        except OSError:
            probe.close()
            return
        worker.probe = probe

    def _read_probe(self, worker: Worker, now: float) -> None:
        assert worker.probe is not None
        try:
            chunk = worker.probe.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        worker.reply += chunk
        if chunk and b"\r\n" not in worker.reply:
            return
        # Any answer proves the worker's loop runs (liveness); its status is the admin API's business.
        if worker.reply.startswith(b"HTTP/1."):
            worker.answered = now
            worker.ready = True
        worker.close_probe()
        worker.next_probe = now + PROBE_INTERVAL

    def _shutdown(self) -> int:
        """Refuse new connections, let the worker finish what it serves (bounded), then exit."""
        self.listen.close()
        if self.https is not None:
            self.https.close()
        worker = self.worker
        if worker is not None and worker.proc.poll() is None:
            grace = self.options.config.shutdown_timeout + STOP_MARGIN
            say(f"stopping: worker pid {worker.proc.pid} gets up to {grace:.0f}s to finish")
            worker.proc.terminate()
            # A stopped worker would keep the SIGTERM pending until it is killed: let it act on it.
            worker.proc.send_signal(signal.SIGCONT)
            try:
                worker.proc.wait(grace)
            except subprocess.TimeoutExpired:
                say(f"worker pid {worker.proc.pid} still running after {grace:.0f}s; killing it")
                worker.proc.kill()
                worker.proc.wait()
        self.admin.close()
        return self.exit_code


def main(argv: list[str]) -> int:
    """Bind the router's sockets and supervise its worker; the exit code (2 for a user error)."""
    args = parser().parse_args(argv)
    try:
        options = options_from(args)
        listen = bind(options.listen, "--listen", BACKLOG)
        admin = bind(options.admin, "--admin", ADMIN_BACKLOG)
        https = bind(options.https, "--https", BACKLOG) if options.https else None
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    return Supervisor(options, argv, listen, admin, https).run()
