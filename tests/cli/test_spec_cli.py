"""`sprout init`, `validate`, `schema` and `push`, run as real `sprout` processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema

from sprout.cli.push_cmd import human_size
from sprout.cli.starter import app_name_from, starter_manifest
from sprout.spec import Manifest, parse_manifest
from sprout.state import StateStore


def sprout(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home)}
    env.pop("SPROUT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_init_writes_a_valid_starter_and_refuses_to_overwrite(tmp_path: Path) -> None:
    app = tmp_path / "My_Shop"
    done = sprout("init", str(app), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {app / 'sprout.toml'} for app 'my-shop'; check it with `sprout validate`\n"
    text = (app / "sprout.toml").read_text()
    again = sprout("init", str(app), home=tmp_path / "home")
    assert again.returncode == 2
    assert f"{app / 'sprout.toml'}: already exists; edit it, or remove it first to start over" in again.stderr
    assert (app / "sprout.toml").read_text() == text


def test_starter_documents_every_section_and_stays_valid_uncommented() -> None:
    text = starter_manifest("shop")
    assert parse_manifest(tomllib.loads(text)).app.name == "shop"
    uncommented = re.sub(r"(?m)^# (?=\[|[A-Za-z_]+ = )", "", text)
    data = tomllib.loads(uncommented)
    assert set(data) == set(Manifest.model_fields)
    manifest = parse_manifest(data)
    assert manifest.deploy.canary.steps == [5, 25, 50, 100]
    assert manifest.secrets["API_KEY"].env == "API_KEY"


def test_sizes_read_like_people_write_them() -> None:
    assert [human_size(n) for n in (180, 12_595, 4 * 1024**2, 3 * 1024**4)] == [
        "180 B",
        "12.3 KiB",
        "4.0 MiB",
        "3072.0 GiB",
    ]


def test_app_names_from_folders() -> None:
    assert [app_name_from(n) for n in ("My_Shop", "2024 lottery", "x", "shop-")] == [
        "my-shop",
        "lottery",
        "app",
        "shop",
    ]


def test_validate_prints_a_summary(tmp_path: Path) -> None:
    (tmp_path / "sprout.toml").write_text(
        '[app]\nname = "hello"\nweb = "run"\n[instances]\nmin = 1\nzones = ["a"]\n'
    )
    done = sprout("validate", str(tmp_path), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "✓ sprout.toml is valid"
    assert "  fleet      1..10 small instances across zones a (start with 1)" in lines
    assert "  router     hello.localhost" in lines


def test_validate_warns_of_a_relative_sqlite_path_and_the_starter_shows_an_absolute_one(
    tmp_path: Path,
) -> None:
    manifest = '[app]\nname = "hello"\nweb = "run"\n[resources.database]\nurl = "sqlite:///data.db"\n'
    (tmp_path / "sprout.toml").write_text(manifest)
    done = sprout("validate", str(tmp_path), home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert (
        'warning: resources.database: url "sqlite:///data.db" is a relative path, so every version would get '
        "a new, empty database in its own app folder; write an absolute path with four slashes "
        '("sqlite:////srv/data/data.db") or remove url for the environment\'s own file (see docs/porting.md)'
    ) in done.stdout.replace("\n", " ")
    (tmp_path / "sprout.toml").write_text(manifest.replace("sqlite:///data.db", "sqlite:////srv/data.db"))
    assert "warning" not in sprout("validate", str(tmp_path), home=tmp_path / "home").stdout
    assert 'url = "sqlite:////srv/shop/data.db"' in starter_manifest("shop")


def test_validate_lists_every_error_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "sprout.toml"
    path.write_text('[app]\nname = "hello"\n[health]\nintervall = "2s"\n')
    done = sprout("validate", str(tmp_path), home=tmp_path / "home")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"error: {path}: app.web: required key is missing\n"
        f'{path}: health.intervall: unknown key in [health]; did you mean "interval"?\n'
    )


def test_schema_prints_a_json_schema(tmp_path: Path) -> None:
    done = sprout("schema", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "sprout.toml"
    assert set(schema["properties"]) >= {"app", "health", "instances", "deploy", "scaling", "secrets"}


def test_push_records_versions_and_reuses_identical_content(tmp_path: Path) -> None:
    home, app = tmp_path / "home", tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n')
    (app / "app.py").write_text("print('hi')\n")
    first = sprout("push", str(app), home=home)
    assert first.returncode == 0, first.stderr
    assert re.fullmatch(r"pushed hello v1 \(sha256 [0-9a-f]{12}…, \d+ B, 2 files\)\n", first.stdout)
    again = sprout("push", str(app), "--json", home=home)
    result = json.loads(again.stdout)
    assert (result["version"], result["unchanged"], result["files"]) == ("v1", True, 2)
    assert sprout("push", str(app), home=home).stdout.startswith("unchanged: v1 (same content as hello v1")
    (app / "app.py").write_text("print('hello')\n")
    second = json.loads(sprout("push", str(app), "--json", home=home).stdout)
    assert (second["version"], second["unchanged"]) == ("v2", False)
    assert any(second["sha256"] in p.name for p in (home / "artifacts").rglob("*.tar.gz"))
    state = StateStore(home / "state.db")
    try:
        versions = state.list_versions("hello")
        assert [(v.label, v.sha256) for v in versions] == [("v1", result["sha256"]), ("v2", second["sha256"])]
        assert versions[0].store_url == (home / "artifacts").resolve().as_uri()
    finally:
        state.close()
    assert not list(home.glob(".push-*"))


def test_push_to_a_store_url_and_without_manifest(tmp_path: Path) -> None:
    home, app, store = tmp_path / "home", tmp_path / "app", tmp_path / "elsewhere"
    app.mkdir()
    missing = sprout("push", str(app), home=home)
    assert missing.returncode == 2
    assert f"{app / 'sprout.toml'}: no manifest here (create one with `sprout init`)" in missing.stderr
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n')
    done = json.loads(sprout("push", str(app), "--store", store.as_uri(), "--json", home=home).stdout)
    assert done["store_url"] == store.resolve().as_uri()
    assert any(done["sha256"] in p.name for p in store.rglob("*.tar.gz"))


def test_push_refuses_a_bundle_without_its_install_inputs(tmp_path: Path) -> None:
    home, app = tmp_path / "home", tmp_path / "app"
    (app / "deps").mkdir(parents=True)
    (app / "sprout.toml").write_text(
        '[app]\nname = "hello"\nweb = "run"\ninstall = "pip install -r requirements.txt"\n'
        'install_inputs = ["requirements.txt", "./deps/constraints.txt"]\n'
    )
    (app / "requirements.txt").write_text("flask==3.0.0\n")
    (app / "deps" / "constraints.txt").write_text("werkzeug==3.0.1\n")
    (app / ".gitignore").write_text("requirements.txt\n")
    refused = sprout("push", str(app), home=home)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: {app / 'sprout.toml'}: app.install_inputs: 'requirements.txt' is not in the bundle (missing, or "
        "excluded by .gitignore or .sproutignore); add the file or remove it from install_inputs"
    )
    state = StateStore(home / "state.db")
    try:
        assert state.list_versions("hello") == [], "nothing recorded"
    finally:
        state.close()
    (app / ".gitignore").unlink()
    assert sprout("push", str(app), home=home).returncode == 0


PUSH_AND_REPORT = """
import json, sys
from pathlib import Path
from sprout.cli.push_cmd import push
from sprout.paths import Home
result = push(Path(sys.argv[1]), Home(Path(sys.argv[2])).ensure())
print(json.dumps({"version": result.version, "models_loaded": "sprout.spec.models" in sys.modules}))
"""


def push_in_fresh_process(app: Path, home: Path) -> dict[str, object]:
    """Push from a new interpreter; say whether it had to load the manifest models."""
    done = subprocess.run(
        [sys.executable, "-c", PUSH_AND_REPORT, str(app), str(home)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_push_with_an_unchanged_manifest_reuses_its_validation(tmp_path: Path) -> None:
    home, app = tmp_path / "home", tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n\n[instances]\nmin = 2\n')
    (app / "app.py").write_text("print(1)\n")
    assert push_in_fresh_process(app, home) == {"version": "v1", "models_loaded": True}
    (app / "app.py").write_text("print(2)\n")
    # A code-only release: the same manifest bytes are not validated again.
    assert push_in_fresh_process(app, home) == {"version": "v2", "models_loaded": False}
    state = StateStore(home / "state.db")
    try:
        v1, v2 = state.list_versions("hello")
        assert v2.manifest_json == v1.manifest_json
        assert v2.manifest.instances.min == 2
    finally:
        state.close()
    # Any change of the bytes, even one that means the same, is validated again.
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n\n[instances]\nmin = 2 # two\n')
    (app / "app.py").write_text("print(3)\n")
    assert push_in_fresh_process(app, home) == {"version": "v3", "models_loaded": True}


def test_a_manifest_made_invalid_is_refused_even_after_valid_pushes(tmp_path: Path) -> None:
    home, app = tmp_path / "home", tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n')
    assert sprout("push", str(app), home=home).returncode == 0
    (app / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "run"\n\n[instances]\nmin = -1\n')
    refused = sprout("push", str(app), home=home)
    assert refused.returncode == 2
    assert f"{app / 'sprout.toml'}" in refused.stderr and "instances.min" in refused.stderr
    state = StateStore(home / "state.db")
    try:
        assert [v.label for v in state.list_versions("hello")] == ["v1"]
    finally:
        state.close()
