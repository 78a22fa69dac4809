"""Sprout: deploy and run web apps with the practices of a well-run cloud platform."""

__version__ = "0.1.0"
