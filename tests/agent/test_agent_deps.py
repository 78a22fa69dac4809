"""Shared dependency layers: versions with unchanged install inputs reuse one virtualenv, others get theirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from instance_kit import make_spec, push, read_log, start_agent, wait_for, wait_http, write_spec

from sprout.agent.bootstrap import prepare
from sprout.agent.cache import Prepared
from sprout.agent.deps import deps_key
from sprout.agent.install import InstallError, exclusive_lock
from sprout.paths import Home

#: A cheap stand-in for `pip install -r requirements.txt`: counts its runs outside the app and "installs"
#: a module holding the requirements it read into the virtualenv's site-packages.
INSTALL = (
    'echo installed >> "$INSTALL_COUNT"; python -c "'
    "import pathlib, sysconfig; "
    "text = pathlib.Path('requirements.txt').read_text(); "
    "pathlib.Path(sysconfig.get_paths()['purelib'], 'installed_dep.py').write_text(f'REQUIREMENTS = {text!r}')"
    '"'
)
INPUTS = ("requirements.txt",)

#: The app: reports which code it is, which dependencies it imports, and the interpreter it runs on.
APP = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import installed_dep

CODE = {code!r}

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"code": CODE, "requirements": installed_dep.REQUIREMENTS,
                           "prefix": sys.prefix, "cwd": os.getcwd()}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

if __name__ == "__main__":
    ThreadingHTTPServer((os.environ["HOST"], int(os.environ["PORT"])), H).serve_forever()
else:
    print(json.dumps({{"code": CODE, "requirements": installed_dep.REQUIREMENTS, "prefix": sys.prefix}}))
"""


def _version(tmp_path: Path, home: Home, name: str, *, code: str, requirements: str | None) -> str:
    """Write one version of the app (its code and, unless None, its requirements) and push it."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "app.py").write_text(APP.format(code=code))
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    (folder / "sprout.toml").write_text(
        f'[app]\nname = "deps"\nweb = "python app.py"\ninstall = {json.dumps(INSTALL)}\n'
        'install_inputs = ["requirements.txt"]\n'
    )
    return push(folder, home.artifacts, tmp_path / f"scratch-{name}")


def _prepare(
    home: Home, sha: str, count: Path, lines: list[str], inputs: tuple[str, ...] | None = INPUTS
) -> Prepared:
    def emit(stream: str, line: str) -> None:
        if stream == "system":
            lines.append(line)

    return prepare(
        sha256=sha,
        store_url=home.artifacts.as_uri(),
        cache_dir=home.cache,
        install=INSTALL,
        install_inputs=inputs,
        environ=os.environ,
        env_vars={"INSTALL_COUNT": str(count)},
        emit=emit,
    )


def _run(prepared: Prepared) -> dict[str, str]:
    """Import the app with the prepared venv's Python, as its `web` command would run it."""
    result = subprocess.run(
        [os.path.join(prepared.venv, "bin", "python"), "-c", "import app"],
        cwd=prepared.app_dir,
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, str] = json.loads(result.stdout)
    return data


def _key(home: Home, sha: str) -> str:
    return str(json.loads((home.cache / sha / ".ready").read_text())["deps"])


@pytest.mark.slow
def test_a_code_only_version_reuses_the_installed_dependencies(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    count = tmp_path / "installs.txt"
    first = _version(tmp_path, home, "v1", code="v1", requirements="flask==3.0.3\n")
    second = _version(tmp_path, home, "v2", code="v2", requirements="flask==3.0.3\n")
    assert first != second
    bodies, specs = [], []
    for label, sha in (("v1", first), ("v2", second)):
        spec = make_spec(
            home,
            sha,
            version=label,
            web="python app.py",
            install=INSTALL,
            install_inputs=INPUTS,
            env_vars={"INSTALL_COUNT": str(count)},
        )
        agents.append(start_agent(write_spec(home, spec)))
        bodies.append(json.loads(wait_http(spec.port, "/", proc=agents[-1])))
        specs.append(spec)

    assert count.read_text() == "installed\n"
    assert [b["code"] for b in bodies] == ["v1", "v2"]
    assert [b["requirements"] for b in bodies] == ["flask==3.0.3\n"] * 2
    assert bodies[1]["cwd"] == str(home.cache / second / "app")
    # The interpreter runs through the version's own venv path, the symlink to the shared layer.
    assert bodies[1]["prefix"] == str(home.cache / second / "venv")
    key = _key(home, first)
    assert _key(home, second) == key
    for sha in (first, second):
        assert os.readlink(home.cache / sha / "venv") == f"../deps/{key}/venv"
    logs = [[str(r["msg"]) for r in read_log(Path(s.log_file)) if r["stream"] == "system"] for s in specs]
    assert f"dependencies {key[:12]}: installing" in logs[0]
    assert f"dependencies {key[:12]}: reused (install inputs unchanged)" in logs[1]
    assert not any(m.startswith("install: ") for m in logs[1])


@pytest.mark.slow
def test_changed_requirements_get_a_new_virtualenv(home: Home, tmp_path: Path) -> None:
    count = tmp_path / "installs.txt"
    first = _version(tmp_path, home, "v1", code="v1", requirements="flask==3.0.3\n")
    second = _version(tmp_path, home, "v2", code="v1", requirements="flask==3.1.0\n")
    lines: list[str] = []
    runs = [_run(_prepare(home, sha, count, lines)) for sha in (first, second)]
    assert count.read_text() == "installed\n" * 2
    assert [r["requirements"] for r in runs] == ["flask==3.0.3\n", "flask==3.1.0\n"]
    assert _key(home, first) != _key(home, second)
    assert sorted(p.name for p in (home.cache / "deps").iterdir() if p.is_dir()) == sorted(
        [_key(home, first), _key(home, second)]
    )
    assert not any("reused" in line for line in lines)


@pytest.mark.slow
def test_without_install_inputs_every_version_gets_its_own_virtualenv(home: Home, tmp_path: Path) -> None:
    count = tmp_path / "installs.txt"
    shas = [
        _version(tmp_path, home, label, code=label, requirements="flask==3.0.3\n") for label in ("v1", "v2")
    ]
    runs = [_run(_prepare(home, sha, count, [], inputs=None)) for sha in shas]
    assert count.read_text() == "installed\n" * 2
    assert [r["code"] for r in runs] == ["v1", "v2"]
    for sha in shas:
        venv = home.cache / sha / "venv"
        assert venv.is_dir() and not venv.is_symlink()
        assert "deps" not in json.loads((home.cache / sha / ".ready").read_text())
    assert not (home.cache / "deps").exists()


@pytest.mark.slow
def test_two_versions_bootstrapping_together_install_their_shared_dependencies_once(
    home: Home, tmp_path: Path, agents: list[subprocess.Popen[bytes]]
) -> None:
    count = tmp_path / "installs.txt"
    # Slow on purpose, so the second agent surely arrives while the first holds the layer's lock.
    install = f"sleep 1; {INSTALL}"
    shas = [
        _version(tmp_path, home, label, code=label, requirements="flask==3.0.3\n") for label in ("v1", "v2")
    ]
    specs = [
        make_spec(
            home,
            sha,
            web="python app.py",
            install=install,
            install_inputs=INPUTS,
            env_vars={"INSTALL_COUNT": str(count)},
        )
        for sha in shas
    ]
    for spec in specs:
        agents.append(start_agent(write_spec(home, spec)))
    bodies = [json.loads(wait_http(s.port, "/", proc=a)) for s, a in zip(specs, agents, strict=True)]
    assert count.read_text() == "installed\n"
    assert [b["code"] for b in bodies] == ["v1", "v2"]
    key = _key(home, shas[0])
    assert _key(home, shas[1]) == key
    logs = [" ".join(str(r["msg"]) for r in read_log(Path(s.log_file))) for s in specs]
    waited = [log for log in logs if f"dependencies {key[:12]}: another bootstrap is installing them" in log]
    assert len(waited) == 1
    assert sum(f"dependencies {key[:12]}: reused (install inputs unchanged)" in log for log in logs) == 1


@pytest.mark.slow
def test_a_half_done_dependency_layer_is_installed_again(home: Home, tmp_path: Path) -> None:
    count = tmp_path / "installs.txt"
    sha = _version(tmp_path, home, "v1", code="v1", requirements="flask==3.0.3\n")
    key = deps_key(tmp_path / "v1", INSTALL, INPUTS)
    crashed = home.cache / "deps" / key
    (crashed / "venv" / "lib").mkdir(parents=True)
    (crashed / "venv" / "lib" / "half-written.py").write_text("# an install that died here")
    lines: list[str] = []
    run = _run(_prepare(home, sha, count, lines))
    assert run["requirements"] == "flask==3.0.3\n"
    assert _key(home, sha) == key
    assert f"dependencies {key[:12]}: removing an incomplete earlier install" in lines
    assert not (crashed / "venv" / "lib" / "half-written.py").exists()
    assert json.loads((crashed / ".ready").read_text())["key"] == key
    assert count.read_text() == "installed\n"


def test_a_missing_install_input_fails_the_bootstrap(home: Home, tmp_path: Path) -> None:
    sha = _version(tmp_path, home, "v1", code="v1", requirements=None)
    with pytest.raises(InstallError) as caught:
        _prepare(home, sha, tmp_path / "installs.txt", [])
    assert str(caught.value) == (
        "install input 'requirements.txt' is not a file in the bundle; add it to the app folder or "
        "remove it from [app] install_inputs, and push a new version"
    )
    assert caught.value.exit_code == 2
    assert not (home.cache / sha / ".ready").exists()
    assert not (tmp_path / "installs.txt").exists()


def test_the_key_covers_the_command_and_each_input_path_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("flask==3.0.3\n")
    (tmp_path / "constraints.txt").write_text("")
    base = deps_key(tmp_path, "pip install -r requirements.txt", ("requirements.txt",))
    assert base == deps_key(tmp_path, "pip install -r requirements.txt", ("requirements.txt",))
    others = {
        deps_key(tmp_path, "pip install -r requirements.txt -c constraints.txt", ("requirements.txt",)),
        deps_key(tmp_path, "pip install -r requirements.txt", ("requirements.txt", "constraints.txt")),
        deps_key(tmp_path, "pip install -r requirements.txt", ("constraints.txt", "requirements.txt")),
    }
    (tmp_path / "requirements.txt").write_text("flask==3.1.0\n")
    others.add(deps_key(tmp_path, "pip install -r requirements.txt", ("requirements.txt",)))
    assert base not in others and len(others) == 4


def test_an_install_input_reached_through_a_link_out_of_the_app_is_refused(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "secret.txt").write_text("not the app's")
    (app / "requirements.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(InstallError) as caught:
        deps_key(app, "pip install -r requirements.txt", ("requirements.txt",))
    assert str(caught.value).startswith("install input 'requirements.txt' is not a file in the bundle;")


def test_a_lock_file_unlinked_by_its_holder_is_taken_afresh(tmp_path: Path) -> None:
    path = tmp_path / "layer.lock"
    # The holder does what housekeeping does: unlink the lock file under the lock, then let go.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX); "
            "print('held', flush=True); sys.stdin.readline(); os.unlink(sys.argv[1])",
            str(path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline() == "held\n"
    waits: list[str] = []
    held: list[int] = []

    def take() -> None:
        with exclusive_lock(path, lambda: waits.append("waiting")):
            held.append(os.stat(path).st_ino)

    taker = threading.Thread(target=take)
    taker.start()
    wait_for(lambda: waits)
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.wait(timeout=10) == 0
    taker.join(timeout=10)
    assert waits == ["waiting"] and len(held) == 1
    # The holder removed the file it held: the lock taken is on the file created at the path afresh.
    assert held[0] == os.stat(path).st_ino


def test_starting_from_a_cached_version_marks_it_as_recently_used(home: Home, tmp_path: Path) -> None:
    sha = _version(tmp_path, home, "v1", code="1", requirements="flask==1\n")
    count, lines = tmp_path / "installs.txt", []
    first = _prepare(home, sha, count, lines)
    marker = Path(first.root) / ".ready"
    long_ago = time.time() - 7200
    os.utime(marker, (long_ago, long_ago))

    again = _prepare(home, sha, count, lines)

    assert again.cached
    assert marker.stat().st_mtime > time.time() - 60, "housekeeping keeps a folder started from recently"
