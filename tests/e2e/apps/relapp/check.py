"""The app's own tests (`[app] test`): fail when the bundle carries a FAIL_TESTS file."""

import sys
from pathlib import Path

print("check: importing relapp")
import relapp  # noqa: E402,F401

if Path("FAIL_TESTS").exists():
    print("check: test_greeting ... FAILED")
    print("AssertionError: FAIL_TESTS present: this version is broken on purpose")
    sys.exit(1)
print("check: all tests passed")
