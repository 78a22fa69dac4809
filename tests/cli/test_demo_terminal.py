"""`make demo` in a terminal: the URL, then Ctrl-C tears everything down and make exits 0, quietly."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import psutil
import pytest

from loopback import free_port

REPO = Path(__file__).resolve().parents[2]

#: The whole demo's wall time under a loaded test machine: the demo's own target is 30 s on a fresh clone.
DEADLINE = 120.0


def _bench() -> object:
    spec = importlib.util.spec_from_file_location("bench_demo", REPO / "bench" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_ctrl_c_ends_the_demo_with_exit_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (REPO / ".venv" / ".installed-run").exists():
        pytest.skip("needs the repository's .venv (make setup)")
    monkeypatch.setenv("SPROUT_HOME", str(tmp_path / "home"))
    bench = _bench()
    result = bench.run_demo(REPO, free_port(), timeout=DEADLINE)  # type: ignore[attr-defined]
    output = result["output"]
    assert result["url_seconds"] is not None, output
    assert result["exit_code"] == 0, output
    assert "demo: tearing down …" in output
    assert "no environments left: router and daemon stopped" in output
    assert not re.search(r"Error \d+|Interrupt|\*\*\*|[Dd]eprecat|Traceback", output), output
    # Nothing of the demo is left running: no daemon, router, agent or app with its home.
    home = str(tmp_path / "home")
    left = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("SPROUT_HOME") == home:
                left.append(process.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    assert left == []


def test_ctrl_c_reaches_the_command_and_not_make(tmp_path: Path) -> None:
    script = tmp_path / "demo.sh"
    script.write_text(
        'stop() { echo "torn down"; kill "$W"; exit 0; }\n'
        "trap stop INT\n"
        "sleep 1000 &\nW=$!\necho 'URL: http://x/'; echo 'press Ctrl-C'\nwait \"$W\"\n"
    )
    (tmp_path / "Makefile").write_text(
        f"demo:\n\t@{sys.executable} {REPO / 'scripts' / 'foreground.py'} bash {script}\n"
    )
    bench = _bench()
    result = bench.run_demo(tmp_path, 0, timeout=DEADLINE)  # type: ignore[attr-defined]
    output = result["output"]
    assert result["exit_code"] == 0, output
    assert "torn down" in output
    # Without the hand-over make gets the terminal's SIGINT too: "make: *** [Makefile:2: demo] Interrupt".
    assert "Interrupt" not in output and "***" not in output, output
