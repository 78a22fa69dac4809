"""Helpers for log tests: write instance and router log lines to real files."""

from __future__ import annotations

import json
from pathlib import Path

from sprout.logs.record import LogRecord, format_line


def record(
    msg: str, *, ts: float = 1_000.0, instance: str = "i-aaa", version: str = "v1", **kw: str
) -> LogRecord:
    fields = {"stream": "stdout", "app": "shop", "env": "prod", "zone": "a", **kw}
    return LogRecord(
        ts=ts,
        stream=fields["stream"],  # type: ignore[arg-type]
        instance=instance,
        app=fields["app"],
        env=fields["env"],
        version=version,
        zone=fields["zone"],
        msg=msg,
    )


def append(path: Path, *records: LogRecord, raw: str = "") -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.writelines(format_line(r) for r in records)
        f.write(raw)


def router_line(ts: float | str, path: str, status: int = 200, request_id: str = "r-1") -> str:
    return (
        json.dumps(
            {
                "time": ts,
                "request_id": request_id,
                "host": "shop.localhost",
                "method": "GET",
                "path": path,
                "status": status,
                "bytes": 12,
                "duration": 0.004,
                "target": "127.0.0.1:40001",
                "version": "v1",
                "zone": "b",
                "retries": 0,
            }
        )
        + "\n"
    )
