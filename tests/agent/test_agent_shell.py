"""How `web` and `install` command lines are run: a simple command replaces the shell (table)."""

from __future__ import annotations

import pytest

from sprout.agent.supervise import exit_status, shell_command


@pytest.mark.parametrize(
    ("command", "script"),
    [
        ("python -m hello", "exec python -m hello"),
        ("uvicorn app:app --host $HOST --port $PORT", "exec uvicorn app:app --host $HOST --port $PORT"),
        ("gunicorn -b ${HOST}:${PORT} app:app", "exec gunicorn -b ${HOST}:${PORT} app:app"),
        ("exec python serve.py", "exec python serve.py"),
        ("python migrate.py && python serve.py", "python migrate.py && python serve.py"),
        ("python a.py; python b.py", "python a.py; python b.py"),
        ("python serve.py | tee out.log", "python serve.py | tee out.log"),
        ("python serve.py > out.log", "python serve.py > out.log"),
        ("python serve.py &", "python serve.py &"),
        ("(cd app && python serve.py)", "(cd app && python serve.py)"),
        ("WORKERS=2 python serve.py", "WORKERS=2 python serve.py"),
        ("python serve.py --at $(date +%s)", "python serve.py --at $(date +%s)"),
        ("python serve.py --at `date`", "python serve.py --at `date`"),
        ("if true; then python serve.py; fi", "if true; then python serve.py; fi"),
        ("{ python serve.py; }", "{ python serve.py; }"),
        ("python serve.py\npython other.py", "python serve.py\npython other.py"),
    ],
)
def test_shell_command(command: str, script: str) -> None:
    assert shell_command(command) == ["sh", "-c", script]


@pytest.mark.parametrize(("returncode", "status"), [(0, 0), (3, 3), (-15, 143), (-9, 137)])
def test_exit_status(returncode: int, status: int) -> None:
    assert exit_status(returncode) == status
