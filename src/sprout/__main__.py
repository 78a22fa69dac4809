"""`python -m sprout` runs the CLI."""

from sprout.cli.main import run

run()
