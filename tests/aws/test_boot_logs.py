"""The instance's log shipping to CloudWatch Logs, and its database and app secrets, against moto."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from sprout.providers.aws.bootconfig import BootConfig
from sprout.providers.aws.dbuser import app_database_url
from sprout.providers.aws.logs import LogShipper, batches, event_for, read_events

from .conftest import REGION, client


def test_shipper_sends_whole_lines_in_order_and_resumes(aws: str, tmp_path: Path) -> None:
    logs = client("logs")
    logs.create_log_group(logGroupName="/sprout/t/prod")  # type: ignore[attr-defined]
    path = tmp_path / "app.log"
    shipper = LogShipper(logs, "/sprout/t/prod", "i-1", path, interval=60)
    shipper.ensure_stream()
    shipper.ensure_stream()  # idempotent
    assert shipper.ship_once() == 0  # no file yet
    base = int(time.time()) - 100
    lines = [
        json.dumps({"ts": base + i, "stream": "stdout", "instance": "i-1", "msg": f"line {i}"})
        for i in range(5)
    ]
    path.write_text("\n".join(lines) + "\n" + f'{{"ts": {base + 9}, "msg": "half')
    assert shipper.ship_once() == 5
    with open(path, "a") as f:
        f.write(' a line"}\nplain text\n')
    assert shipper.ship_once() == 2
    events = read_events(logs, "/sprout/t/prod")
    assert [e.message for e in events[:5]] == lines
    assert events[5].message == f'{{"ts": {base + 9}, "msg": "half a line"}}'
    assert events[0].timestamp == base * 1000
    assert events[6].message == "plain text"


def test_batches_respect_put_log_events_limits() -> None:
    big = "x" * 200_000
    events = [event_for(big, 1.0) for _ in range(12)]
    sizes = [len(b) for b in batches(events)]
    assert sum(sizes) == 12 and all(s * (200_000 + 26) <= 1_048_576 for s in sizes)
    many = [event_for("y", float(i)) for i in range(25_000)]
    assert [len(b) for b in batches(many)] == [10_000, 10_000, 5_000]
    assert len(event_for("z" * 300_000, 0.0).message) == 262_144 - 26


def test_database_url_is_assembled_from_the_app_users_secret(aws: str) -> None:
    arn = client("secretsmanager").create_secret(  # type: ignore[attr-defined]
        Name="shop-app-db", SecretString=json.dumps({"username": "shop_app", "password": "p@ss:/word"})
    )["ARN"]
    config = BootConfig(
        app="shop",
        env="prod",
        store_url="s3://b/shop",
        web="x",
        install=None,
        health_path="/",
        port=8080,
        region=REGION,
        log_group="/sprout/shop/prod",
        database={
            "engine": "mysql",
            "host": "db.example",
            "port": "3306",
            "name": "shop",
            "app_secret_arn": arn,
        },
    )
    assert app_database_url(config) == "mysql://shop_app:p%40ss%3A%2Fword@db.example:3306/shop"


def test_app_secrets_round_trip_through_secrets_manager(aws: str) -> None:
    from sprout.errors import ServiceError
    from sprout.providers.aws.secrets import fetch_secrets, store_secrets

    sm = client("secretsmanager")
    store_secrets(sm, "sprout/lottery/prod", {"LOTTERY_ADMIN_TOKEN": "first"})
    store_secrets(sm, "sprout/lottery/prod", {"LOTTERY_ADMIN_TOKEN": "second"})  # a new version, same secret
    assert fetch_secrets(sm, "sprout/lottery/prod", ["LOTTERY_ADMIN_TOKEN"]) == {
        "LOTTERY_ADMIN_TOKEN": "second"
    }
    with pytest.raises(ServiceError, match="no value for OTHER"):
        fetch_secrets(sm, "sprout/lottery/prod", ["LOTTERY_ADMIN_TOKEN", "OTHER"])
