"""Releases: strategies as resumable state machines, canary analysis, rollback."""
