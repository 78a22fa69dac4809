"""Security tests drive Sprout end to end with the e2e kit (a private home, the real CLI, real processes)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
