"""The CLI's map of commands to modules matches what each module registers, and `--help` lists them all."""

from __future__ import annotations

import importlib
import subprocess
import sys

import typer

from sprout.cli.main import COMMAND_MODULES


def registered(module: str) -> set[str]:
    """The command and group names `module.register` adds to a fresh app."""
    app = typer.Typer()
    importlib.import_module(module).register(app)
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    names |= {g.name or "" for g in app.registered_groups}
    return names


def test_every_module_registers_exactly_its_listed_commands() -> None:
    for module, names in COMMAND_MODULES.items():
        assert registered(module) == set(names), module


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sprout", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for names in COMMAND_MODULES.values():
        for name in names:
            assert f" {name} " in result.stdout, name


def test_a_command_loads_only_its_module() -> None:
    probe = (
        "import sys; sys.argv = ['sprout', 'validate', '/nonexistent'];"
        "from sprout.cli import main;"
        "main.load_commands(main._command_name(sys.argv[1:]));"
        "print(sorted(m for m in sys.modules if m.startswith('sprout.cli.') and m.endswith('_cmd')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "['sprout.cli.spec_cmd']"


def test_status_and_the_daemon_leave_out_what_they_do_not_use() -> None:
    # Every CLI command and every daemon start pays for its imports: `status` needs neither the Prometheus
    # page, certificate parsing, emoji codes nor the pydantic models (of the manifest, of the routing
    # table); the daemon does not need httpx (nor its command line).
    status = "from sprout.cli import main; main.load_commands('status')"
    daemon = "import sprout.controlplane.daemon"
    for setup, unused in (
        (status, ("prometheus_client", "cryptography.x509", "rich._emoji_codes", "httpx", "pydantic")),
        (daemon, ("httpx", "pygments")),
    ):
        probe = f"import sys; {setup}; print(sorted(m for m in {unused!r} if m in sys.modules))"
        result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
        assert result.stdout.strip() == "[]", (setup, result.stdout, result.stderr)
