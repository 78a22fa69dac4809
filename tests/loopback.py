"""Loopback ports for the test kits: leased from the one record every test process and every Sprout home
of the run share, so parallel tests never get the same port as each other or as an instance."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sprout.ports import PortBook

#: The lease record of every test process of this user (tests/conftest.py names it in $SPROUT_PORT_LEASES).
LEASES = Path(tempfile.gettempdir()) / f"sprout-tests-{os.getuid()}" / "ports.db"
PORTS = PortBook(LEASES)


def free_port() -> int:
    """A loopback port nothing listens on, leased to this test process until it exits.

    Binding to port 0 and closing the socket is not enough: the next caller (another test process, an
    instance's daemon) may be handed the same port before the first listens on it.
    """
    return PORTS.lease("test")
