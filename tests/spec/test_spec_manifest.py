"""The manifest: defaults, durations and sizes, JSON Schema, secrets, digest."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

from sprout.errors import UserError
from sprout.spec import Manifest, load_manifest, parse_manifest, resolve_secrets
from sprout.spec.units import format_duration, parse_duration, parse_size

FULL = """
[app]
name = "microsite"
web = "uvicorn microsite.app:app --host $HOST --port $PORT"
install = "pip install -r requirements.txt"
install_inputs = ["requirements.txt", "constraints/prod.txt"]
release = "python -m microsite.migrate"
test = "pytest -q tests"

[health]
path = "/healthz"
interval = "2s"
timeout = "500ms"
healthy_threshold = 2
unhealthy_threshold = 3
grace = "1m"

[instances]
size = "small"
min = 2
max = 10
zones = ["a", "b"]

[scaling]
metric = "requests_per_instance"
target = 50
[[scaling.schedule]]
cron = "30 19 * 6 *"
min = 8

[deploy]
strategy = "bluegreen"
rollback_window = "10m"
drain = "30s"

[resources.sessions]
engine = "memcached"

[resources.database]
engine = "mysql"
url = "mysql://root@127.0.0.1:3306/microsite"

[router]
hosts = ["microsite.localhost"]
cache_static = true

[env]
SHOP_CURRENCY = "EUR"

[secrets]
STRIPE_KEY = "env:STRIPE_KEY"
DB_PASSWORD = { file = "secrets/db.txt" }

[cost]
currency = "EUR"
"""


def test_two_line_manifest_is_valid_with_defaults(tmp_path: Path) -> None:
    (tmp_path / "sprout.toml").write_text('[app]\nname = "hello"\nweb = "python -m http.server $PORT"\n')
    manifest = load_manifest(tmp_path)
    assert manifest.app.name == "hello"
    assert manifest.app.install is None and manifest.app.install_inputs is None
    assert (manifest.health.path, manifest.health.interval, manifest.health.timeout) == ("/", 2.0, 1.0)
    assert (manifest.instances.min, manifest.instances.max, manifest.instances.zones) == (2, 10, ["a", "b"])
    assert manifest.instances.initial == 2
    assert manifest.deploy.strategy == "rolling"
    assert manifest.resources.sessions.engine == manifest.resources.database.engine == "sqlite"
    assert manifest.hosts == ["hello.localhost"]
    assert manifest.env == {} and manifest.secrets == {}


def test_full_manifest_reads_every_section() -> None:
    manifest = parse_manifest(tomllib.loads(FULL))
    assert manifest.app.install_inputs == ("requirements.txt", "constraints/prod.txt")
    assert manifest.health.timeout == 0.5 and manifest.health.grace == 60.0
    assert manifest.deploy.rollback_window == 600.0
    assert manifest.scaling.schedule[0].min == 8
    assert manifest.secrets["STRIPE_KEY"].env == "STRIPE_KEY"
    assert manifest.secrets["DB_PASSWORD"].file == "secrets/db.txt"
    assert manifest.hosts == ["microsite.localhost"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("10m", 600.0), ("1h", 3600.0), ("1d", 86400.0), ("1.5s", 1.5), (3, 3.0)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "500ms"), (2.0, "2s"), (600.0, "10m"), (90.0, "90s")])
def test_durations_format_back(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("64MB", 64_000_000), ("1GiB", 1024**3), ("512KB", 512_000), (10, 10)]
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


def test_json_schema_is_valid_and_accepts_real_manifests() -> None:
    schema = Manifest.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    json.dumps(schema)
    assert list(validator.iter_errors(tomllib.loads(FULL))) == []
    assert list(validator.iter_errors({"app": {"name": "hello", "web": "run"}})) == []
    [error] = validator.iter_errors({"app": {"name": "hello", "web": "run"}, "helth": {}})
    assert "helth" in error.message
    [error] = validator.iter_errors(
        {"app": {"name": "hello", "web": "run"}, "health": {"interval": "2 secs"}}
    )
    assert error.absolute_path[-1] == "interval"


def test_json_schema_documents_every_section() -> None:
    schema = Manifest.model_json_schema()
    assert set(schema["properties"]) == set(Manifest.model_fields)
    assert schema["required"] == ["app"]
    for name, definition in schema["$defs"].items():
        assert definition.get("description"), f"{name} has no description"


def test_secrets_resolve_from_environment_and_files(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "db.txt").write_text("hunter2\n")
    manifest = parse_manifest(tomllib.loads(FULL))
    values = resolve_secrets(manifest, tmp_path, {"STRIPE_KEY": "sk_test_1"})
    assert values == {"STRIPE_KEY": "sk_test_1", "DB_PASSWORD": "hunter2"}


def test_missing_secret_sources_are_user_errors(tmp_path: Path) -> None:
    manifest = parse_manifest(tomllib.loads(FULL))
    with pytest.raises(UserError) as caught:
        resolve_secrets(manifest, tmp_path, {})
    assert (
        str(caught.value)
        == "secrets.STRIPE_KEY: environment variable STRIPE_KEY is not set (export it first)"
    )
    with pytest.raises(UserError) as caught:
        resolve_secrets(manifest, tmp_path, {"STRIPE_KEY": "x"})
    assert str(caught.value) == (
        f"secrets.DB_PASSWORD: cannot read {tmp_path / 'secrets/db.txt'}: No such file or directory"
    )


def test_secret_values_never_enter_the_manifest(tmp_path: Path) -> None:
    manifest = parse_manifest(tomllib.loads(FULL))
    dumped = manifest.model_dump_json()
    assert "sk_test_1" not in dumped and "STRIPE_KEY" in dumped


def test_digest_follows_meaning_not_spelling() -> None:
    a = parse_manifest({"app": {"name": "hello", "web": "run"}, "health": {"interval": "2s"}})
    b = parse_manifest({"app": {"name": "hello", "web": "run"}, "health": {"interval": 2}})
    c = parse_manifest({"app": {"name": "hello", "web": "run"}, "health": {"interval": "3s"}})
    assert a.digest() == b.digest() != c.digest()
    assert len(a.digest()) == 64


def test_manifest_round_trips_through_json() -> None:
    manifest = parse_manifest(tomllib.loads(FULL))
    assert parse_manifest(json.loads(manifest.model_dump_json())) == manifest
