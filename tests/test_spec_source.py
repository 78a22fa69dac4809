"""The key a validated manifest is reused by: the file's bytes and the code that validates them."""

from __future__ import annotations

import subprocess
import sys

from sprout.spec.source import source_key


def test_equal_bytes_give_equal_keys_and_any_change_a_new_one() -> None:
    text = b'[app]\nname = "hello"\nweb = "run"\n'
    assert source_key(text) == source_key(bytes(text))
    assert source_key(text) != source_key(text + b"\n")
    assert source_key(text) != source_key(text.replace(b"\n", b"\r\n"))


def test_computing_a_key_does_not_load_pydantic() -> None:
    code = "import sys; from sprout.spec.source import source_key; source_key(b'x'); print('pydantic' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
