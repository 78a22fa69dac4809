"""Language-neutral installs: a PHP app's `vendor/` comes back from the install cache on a code-only release."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_kit import Sprout, private_sprout
from release_kit import cli

from sprout.paths import Home
from sprout.state import StateStore

#: How long the app's install takes: any boot shorter than this did not run it.
INSTALL_SECONDS = 5
#: The acceptance figure is < 3 s on an idle machine; the assertion leaves room for a loaded one and
#: still proves the install did not run (the marker below is the exact proof).
BOOT_DEADLINE = 4.5

MANIFEST = """\
[app]
name = "vendored"
web = "php -S $HOST:$PORT index.php"
install = "sh install.sh"
install_inputs = ["composer.lock"]
install_outputs = ["vendor"]
python = false

[env]
INSTALL_LOG = "{log}"

[health]
interval = "500ms"
timeout = "500ms"
healthy_threshold = 1

[instances]
min = 1
max = 1
zones = ["a"]

[scaling]
enabled = false

[deploy]
strategy = "bluegreen"
drain = "0s"
rollback_window = "0s"
health_timeout = "60s"
"""

#: A slow stand-in for `composer install`: fills vendor/ from composer.lock, and logs each run.
INSTALL = f"""\
sleep {INSTALL_SECONDS}
mkdir -p vendor/acme
printf '<?php const GREETING = "%s";\\n' "$(cat composer.lock)" > vendor/acme/lib.php
echo installed >> "$INSTALL_LOG"
"""

INDEX = """\
<?php
require __DIR__ . '/vendor/acme/lib.php';
header('Content-Type: application/json');
$names = ['HOME', 'TMPDIR', 'PATH', 'VIRTUAL_ENV', 'PYTHONUNBUFFERED', 'SPROUT_VERSION'];
$env = [];
foreach ($names as $name) { $env[$name] = getenv($name); }
echo json_encode(['code' => '{code}', 'greeting' => GREETING, 'env' => $env]);
"""


@pytest.fixture
def vendored(tmp_path: Path) -> Iterator[Sprout]:
    """A private Sprout with the PHP app's folder; everything it started is stopped at the end."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_text(MANIFEST.format(log=tmp_path / "installs.log"))
    (app / "install.sh").write_text(INSTALL)
    (app / "composer.lock").write_text("hello from vendor v1")
    (app / "index.php").write_text(INDEX.replace("{code}", "code 1"))
    with private_sprout(app, tmp_path / "home") as sprout:
        yield sprout


def _answer(port: int) -> dict[str, object]:
    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=5, trust_env=False)
    assert response.status_code == 200, response.text
    return dict(json.loads(response.text))


def _deploy_and_time_boot(sprout: Sprout, version: str) -> tuple[float, dict[str, object], str]:
    """Deploy the folder as `version`: seconds from its instance's agent start to its app answering,
    the app's answer, and the instance's id."""
    store = StateStore(sprout.home / "state.db")
    deploy = cli(sprout, "deploy", str(sprout.app_dir))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and deploy.poll() is None:
            found = [i for i in store.list_instances("vendored", "production") if i.version == version]
            if found and found[0].started_at is not None:
                instance = found[0]
                break
            time.sleep(0.02)
        else:
            raise AssertionError(f"no {version} instance started: {deploy.communicate(timeout=60)}")
        while time.monotonic() < deadline:
            try:
                answer = _answer(instance.port)
                answered = time.time()
                break
            except httpx.HTTPError:
                time.sleep(0.02)
        else:
            raise AssertionError(f"{version}'s instance never answered")
        out, err = deploy.communicate(timeout=120)
        assert deploy.returncode == 0, f"deploy failed:\n{out}\n{err}"
    finally:
        if deploy.poll() is None:
            deploy.kill()
            deploy.wait()
        store.close()
    assert instance.started_at is not None
    return answered - instance.started_at, answer, instance.id


@pytest.mark.slow
def test_a_code_only_release_boots_from_the_cached_vendor_folder(vendored: Sprout, tmp_path: Path) -> None:
    installs = tmp_path / "installs.log"
    vendored.up()
    assert installs.read_text() == "installed\n"

    (vendored.app_dir / "index.php").write_text(INDEX.replace("{code}", "code 2"))
    boot, answer, instance_id = _deploy_and_time_boot(vendored, "v2")
    print(f"code-only release: instance answered {boot:.2f}s after its agent started")
    # The install ran once, for v1: v2 got vendor/ from the cache, and serves the new code with it.
    assert installs.read_text() == "installed\n"
    assert answer["code"] == "code 2" and answer["greeting"] == "hello from vendor v1"
    assert boot < BOOT_DEADLINE, f"v2 took {boot:.2f}s to answer (the install alone takes {INSTALL_SECONDS}s)"

    # Not Python: no virtualenv, no Python variables; HOME and TMPDIR are the instance's own.
    env = answer["env"]
    assert isinstance(env, dict)
    assert env["VIRTUAL_ENV"] is False and env["PYTHONUNBUFFERED"] is False
    assert "venv" not in str(env["PATH"])
    home = Path(env["HOME"])
    assert home.name == "home" and home.parent.name == instance_id
    assert Path(env["TMPDIR"]) == home.parent / "tmp"
    cache = Home(vendored.home).cache
    assert list(cache.glob("*/app/vendor")) and not list(cache.glob("*/venv"))

    # A changed install input installs again, and the new vendor/ is the one served.
    (vendored.app_dir / "composer.lock").write_text("hello from vendor v3")
    vendored.run("deploy", str(vendored.app_dir))
    assert installs.read_text() == "installed\ninstalled\n"
    [instance] = [i for i in vendored.environment("vendored")["instances"] if i["state"] == "running"]
    assert _answer(int(instance["port"]))["greeting"] == "hello from vendor v3"
