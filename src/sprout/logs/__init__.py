"""Central logs: the line format instances write (`record`), the SQLite/FTS5 log store (`store`) and its
ingester (`ingest`). Import from those modules: every instance's agent imports `record` while its app
boots, and must not pay for the store it never uses."""

import importlib

_HOMES = {
    "LogIngester": "sprout.logs.ingest",
    "LogRecord": "sprout.logs.record",
    "format_line": "sprout.logs.record",
    "parse_line": "sprout.logs.record",
    "LogRow": "sprout.logs.store",
    "LogStore": "sprout.logs.store",
}


def __getattr__(name: str) -> object:
    """The public names of the submodules, imported on first use (`from sprout.logs import LogStore`)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'sprout.logs' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
