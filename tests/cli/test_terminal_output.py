"""App text reaches the terminal without escape sequences or control characters (`sprout logs`, CLI errors)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sprout.logs.record import LogRecord, format_line
from sprout.logs.store import LogStore
from sprout.paths import Home
from sprout.spec import load_manifest
from sprout.state import StateStore
from sprout.terminal import printable

CASES = [
    ("plain", "ready on :8000\tok\nnext line", "ready on :8000\tok\nnext line"),
    ("sgr-colour", "\x1b[31mred\x1b[0m text", "red text"),
    ("cursor-moves", "\x1b[2J\x1b[1;1Hcleared", "cleared"),
    ("osc-title-bel", "\x1b]0;owned\x07after", "after"),
    ("osc-hyperlink-st", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("osc-unterminated", "before\x1b]0;title\nnext", "before\nnext"),
    ("dcs-string", "\x1bP1$r0m\x1b\\done", "done"),
    ("two-char-escape", "\x1bcreset \x1b(Bcharset", "reset charset"),
    ("c1-csi", "\x9b31mc1 red", "c1 red"),
    ("c1-osc", "\x9d0;title\x9cafter", "after"),
    ("carriage-return", "fake\roverwrite", "fakeoverwrite"),
    ("backspace-bell-del", "a\x08b\x07c\x7fd", "abcd"),
    ("nul-and-c1", "x\x00y\x85z", "xyz"),
    ("lone-escape-at-end", "end\x1b", "end"),
    ("unicode-kept", "ünïcode 🌱 — ok", "ünïcode 🌱 — ok"),
]


@pytest.mark.parametrize(("name", "text", "shown"), CASES, ids=[c[0] for c in CASES])
def test_printable(name: str, text: str, shown: str) -> None:
    assert printable(text) == shown


def sprout(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SPROUT_HOME": str(home), "COLUMNS": "200"}
    env.pop("SPROUT_STORE", None)
    return subprocess.run(
        [sys.executable, "-m", "sprout", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_sprout_logs_strips_escapes_from_app_output(tmp_path: Path) -> None:
    home = Home(tmp_path / "home").ensure()
    instance_log = tmp_path / "i-1.log"
    ts = time.time()
    instance_log.write_text(
        format_line(
            LogRecord(ts, "stdout", "i-1", "shop", "production", "v1", "a", "\x1b[31mred\x1b[0m alert")
        )
        + format_line(
            LogRecord(
                ts + 1, "stderr", "i-1", "shop", "production", "v1", "a", "\x1b]0;owned\x07\x9b2Jhidden\r"
            )
        )
    )
    store = LogStore(home.log_db)
    try:
        assert store.ingest_file(instance_log, "instance") == 2
    finally:
        store.close()
    done = sprout("logs", str(tmp_path), home=home.root, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == ["i-1 v1 stdout: red alert", "i-1 v1 stderr: hidden"]
    assert not any(ch in done.stdout for ch in "\x1b\x07\x9b\r")


def test_emoji_codes_in_a_users_text_are_printed_as_written(tmp_path: Path) -> None:
    # Rich turns `:thumbs_up:` into an emoji unless told not to; the key is the user's, shown as written.
    (tmp_path / "sprout.toml").write_text('[app]\nname = "shop"\nweb = "serve"\n":thumbs_up:" = 1\n')
    done = sprout("validate", str(tmp_path), home=tmp_path / "home", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "app.:thumbs_up:: unknown key in [app]" in done.stderr
    assert "\N{THUMBS UP SIGN}" not in done.stderr


def test_a_failing_test_gate_shows_its_output_without_escapes(tmp_path: Path) -> None:
    home, app = Home(tmp_path / "home").ensure(), tmp_path / "app"
    app.mkdir()
    (app / "sprout.toml").write_text('[app]\nname = "shop"\nweb = "true"\ntest = "sh check.sh"\n')
    (app / "check.sh").write_text("printf '\\033[31mFAILED\\033[0m \\033]0;owned\\007test_x\\n'\nexit 1\n")
    state = StateStore(home.state_db)
    try:
        state.upsert_environment("shop", "production", load_manifest(app), app)
    finally:
        state.close()
    try:
        done = sprout("deploy", str(app), home=home.root, cwd=tmp_path)
    finally:
        sprout("down", str(app), home=home.root, cwd=tmp_path)  # `deploy` started the daemon for the gate
    assert done.returncode == 1, done.stderr
    assert "  FAILED test_x\n" in done.stderr
    assert not any(ch in done.stderr for ch in "\x1b\x07")
