"""LocalProvider: launch, observe and stop instances as detached `sprout agent` processes.

Each instance has a folder `instances/<id>/` holding `spec.json` (its user data, no secrets),
`pid.json` (the agent's pid and process start time, written right after launch) and `agent.log` (the
agent's own stderr, for crashes before its log file is open). The folder is the whole record: a new
provider object (a restarted control plane) adopts running agents by reading `pid.json` and proving
each process's identity, and never needs the object that launched them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from sprout.errors import ConflictError, ServiceError
from sprout.paths import Home
from sprout.ports import PortBook, instance_owner
from sprout.process_start import Start
from sprout.providers.base import InstanceSpec, ObservedInstance, ProcessState
from sprout.providers.local.processes import descendants, identify, kill_all, pid_reused, session_members

SPEC_FILE = "spec.json"
PID_FILE = "pid.json"
AGENT_LOG = "agent.log"
#: Time the agent gets beyond the app's grace to log the app's exit and exit itself.
STOP_MARGIN = 3.0
#: How long SIGKILLed processes may take to disappear before stop() reports a failure.
KILL_TIMEOUT = 5.0


@dataclass(frozen=True)
class PidRecord:
    """What `pid.json` proves an agent by: its pid and its process start."""

    pid: int
    started: Start


class LocalProvider:
    """Instances as agent processes on this machine, recorded under SPROUT_HOME/instances."""

    name = "local"

    def __init__(self, home: Home, *, python: str = sys.executable) -> None:
        self.home = home
        self.python = python
        self.ports = PortBook.of(home)
        # Agents this object started: kept to reap them (an unreaped exited child stays a zombie).
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        # Set once the running agents found after a restart hold their ports' leases again.
        self._adopted = False

    def launch(self, spec: InstanceSpec, secrets: Mapping[str, str]) -> ObservedInstance:
        """Write the instance's spec and start its agent detached; secrets reach only the agent's env."""
        folder = self.home.instance_dir(spec.instance_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self._alive(spec.instance_id) is not None:
            raise ConflictError(
                f"instance {spec.instance_id} is already running (see {folder / PID_FILE}); "
                "stop it first or launch a new instance id"
            )
        spec_path = folder / SPEC_FILE
        _write_json(spec_path, spec.to_json())
        env = {**os.environ, **secrets}
        with open(folder / AGENT_LOG, "ab") as agent_log:
            popen = subprocess.Popen(
                [self.python, "-m", "sprout.agent", "--spec", str(spec_path)],
                cwd=folder,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=agent_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self._children[spec.instance_id] = popen
        try:
            started = Start.of(psutil.Process(popen.pid))
        except psutil.NoSuchProcess as exc:
            popen.wait()
            raise ServiceError(
                f"instance {spec.instance_id}: the agent exited at once; see {folder / AGENT_LOG}"
            ) from exc
        _write_json(folder / PID_FILE, {"pid": popen.pid, **started.to_record()})
        # The instance's port is leased for as long as its agent runs.
        self.ports.hand_over(spec.port, instance_owner(spec.instance_id), popen.pid)
        return _observed(spec, PidRecord(popen.pid, started), "running")

    def observe(self) -> list[ObservedInstance]:
        """Every recorded instance not yet stopped: `running` if its agent is proven alive, else `exited`."""
        for popen in list(self._children.values()):
            popen.poll()
        found = []
        for pid_path in sorted(self.home.instances.glob(f"*/{PID_FILE}")):
            folder = pid_path.parent
            record = read_pid(pid_path)
            spec = _read_spec(folder / SPEC_FILE)
            if record is None or spec is None:
                continue
            alive = identify(record.pid, record.started, str(folder / SPEC_FILE))
            found.append(_observed(spec, record, "running" if alive else "exited"))
        if not self._adopted:
            for instance in found:
                if instance.state == "running":
                    self.ports.adopt(instance.port, instance_owner(instance.instance_id), instance.pid)
            self._adopted = True
        return found

    def stop(self, instance_id: str, grace: float) -> None:
        """SIGTERM the agent (it stops the app within `grace`), then SIGKILL whatever of it is left."""
        folder = self.home.instance_dir(instance_id)
        record = read_pid(folder / PID_FILE)
        if record is None:
            self._reap(instance_id, 0.0)
            return
        spec = _read_spec(folder / SPEC_FILE)
        agent = identify(record.pid, record.started, str(folder / SPEC_FILE))
        leftovers: list[psutil.Process] = []
        if agent is not None:
            leftovers = descendants(agent)
            with contextlib.suppress(psutil.NoSuchProcess):
                agent.send_signal(signal.SIGTERM)
            self._wait_agent(instance_id, agent, grace + STOP_MARGIN)
            leftovers.append(agent)
        # The agent led its own session, so the session id is its pid and a dead (or dying) agent's app
        # may remain in it. If that pid now runs some other process, the id was reused: leave it be.
        if agent is not None or not pid_reused(record.pid, record.started):
            leftovers.extend(session_members(record.pid, record.started))
        alive = kill_all(leftovers, KILL_TIMEOUT)
        self._reap(instance_id, KILL_TIMEOUT)
        if alive:
            pids = ", ".join(str(proc.pid) for proc in alive)
            raise ServiceError(
                f"instance {instance_id}: processes {pids} survived SIGKILL; check them with `ps` and retry"
            )
        (folder / PID_FILE).unlink(missing_ok=True)
        if spec is not None:
            self.ports.release(spec.port, instance_owner(instance_id))

    def _alive(self, instance_id: str) -> psutil.Process | None:
        """The instance's agent if it is proven alive."""
        folder = self.home.instance_dir(instance_id)
        record = read_pid(folder / PID_FILE)
        if record is None:
            return None
        return identify(record.pid, record.started, str(folder / SPEC_FILE))

    def _wait_agent(self, instance_id: str, agent: psutil.Process, timeout: float) -> None:
        """Wait up to `timeout` for the agent to exit (reaping it if this object started it)."""
        popen = self._children.get(instance_id)
        try:
            if popen is not None and popen.pid == agent.pid:
                popen.wait(timeout)
            else:
                agent.wait(timeout)
        except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
            pass

    def _reap(self, instance_id: str, timeout: float) -> None:
        """Collect the exit status of an agent this object started, so no zombie is left behind."""
        popen = self._children.pop(instance_id, None)
        if popen is None:
            return
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self._children[instance_id] = popen


def _observed(spec: InstanceSpec, record: PidRecord, state: ProcessState) -> ObservedInstance:
    return ObservedInstance(
        instance_id=spec.instance_id,
        pid=record.pid,
        started_at=record.started.at,
        state=state,
        host=spec.host,
        port=spec.port,
        zone=spec.zone,
        version=spec.version,
    )


def read_pid(path: Path) -> PidRecord | None:
    """The pid record in `path`, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return PidRecord(pid=int(data["pid"]), started=Start.from_record(data))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_spec(path: Path) -> InstanceSpec | None:
    """The instance spec in `path`, or None if it is missing or unreadable."""
    try:
        return InstanceSpec.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def _write_json(path: Path, data: Mapping[str, object]) -> None:
    """Write JSON atomically (a reader sees the old file or the new one, never half of one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
