"""One-off commands of a version (its tests, its release phase), run like a Heroku one-off dyno.

The version's bundle is bootstrapped exactly as an instance would (`agent.bootstrap.prepare`), and the
command runs in a throw-away copy of the unpacked folder, so nothing it writes reaches the folder that
instances serve from. Its output is kept (the tail for error reports) and passed on line by line.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sprout.agent.appuser import ensure_user
from sprout.agent.bootstrap import prepare
from sprout.agent.env import base_env
from sprout.agent.install import run_command
from sprout.process_start import running

#: Lines of output kept for the report of a failed command.
TAIL_LINES = 40

Emit = Callable[[str, str], None]


#: A one-off's scratch copy is a folder of the system's temp folder (the app's own user must reach it,
#: which a private home would not let it), named after the process that made it.
SCRATCH_PREFIX = "sprout-oneoff-"


def remove_orphan_scratch() -> list[Path]:
    """Remove the scratch copies whose process is gone (it was killed mid-command); those removed."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid = folder.name.removeprefix(SCRATCH_PREFIX).partition("-")[0]
        if pid.isdigit() and not running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@dataclass(frozen=True)
class OneOff:
    """How a one-off command ended."""

    command: str
    code: int
    seconds: float
    tail: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """It exited 0."""
        return self.code == 0


def run_oneoff(
    command: str,
    *,
    sha256: str,
    store_url: str,
    cache_dir: Path,
    install: str | None,
    install_inputs: Sequence[str] | None,
    environ: Mapping[str, str],
    env_vars: Mapping[str, str],
    emit: Emit | None = None,
    scratch_vars: Callable[[Path], Mapping[str, str]] | None = None,
    run_as: str | None = None,
    stop: threading.Event | None = None,
) -> OneOff:
    """Bootstrap the bundle, then run `command` in a copy of it with `env_vars` (and `scratch_vars`);
    `run_as`: the app's own user to run it as (see `sprout.agent.appuser`), None: this process's user;
    `stop`: set, the command is killed."""
    started = time.monotonic()
    tail: deque[str] = deque(maxlen=TAIL_LINES)

    def keep(stream: str, line: str) -> None:
        tail.append(line if stream != "system" else f"[sprout] {line}")
        if emit is not None:
            emit(stream, line)

    prepared = prepare(
        sha256=sha256,
        store_url=store_url,
        cache_dir=cache_dir,
        install=install,
        install_inputs=install_inputs,
        environ=environ,
        env_vars=env_vars,
        emit=keep,
    )
    remove_orphan_scratch()
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
        workdir = Path(scratch) / "app"
        shutil.copytree(prepared.app_dir, workdir, symlinks=False)
        env = base_env(environ, prepared.venv)
        env.update(env_vars)
        if scratch_vars is not None:
            env.update(scratch_vars(Path(scratch)))
        user = None
        if run_as is not None:
            app_user = ensure_user(run_as, str(cache_dir))
            # The scratch copy becomes the user's; its HOME and TMPDIR are its own folder, as for `web`.
            for folder in (Path(scratch), *Path(scratch).rglob("*")):
                os.lchown(folder, app_user.uid, app_user.gid)
            env.update(HOME=app_user.home, USER=app_user.name, LOGNAME=app_user.name, TMPDIR=app_user.home)
            user = (app_user.uid, app_user.gid)
        keep("system", f"running: {command}")
        code = run_command(command, cwd=workdir, env=env, emit=keep, user=user, stop=stop)
    return OneOff(command, code, round(time.monotonic() - started, 3), tuple(tail))
