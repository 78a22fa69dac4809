"""Helpers that apps running on Sprout may import (each is also vendored into the example apps)."""
