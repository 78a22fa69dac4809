"""Suite-wide settings: a shared bundle cache and pip cache under /tmp, so per-test homes stay cheap."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Set at import, before any test starts a process: children inherit them.
_SHARED = Path(tempfile.gettempdir()) / f"sprout-tests-{os.getuid()}"
os.environ.setdefault("SPROUT_CACHE_DIR", str(_SHARED / "bundle-cache"))
os.environ.setdefault("PIP_CACHE_DIR", str(_SHARED / "pip-cache"))
os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
