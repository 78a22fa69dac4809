"""Central logs: the line format instances write, the SQLite/FTS5 log store, and its ingester."""

from sprout.logs.ingest import LogIngester
from sprout.logs.record import LogRecord, format_line, parse_line
from sprout.logs.store import LogRow, LogStore

__all__ = ["LogIngester", "LogRecord", "LogRow", "LogStore", "format_line", "parse_line"]
