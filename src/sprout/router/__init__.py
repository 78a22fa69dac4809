"""Sprout's data plane: a reverse proxy with health checks, weights, draining, safe retries and metrics."""

from sprout.router.native import search_path

# The compiled per-request modules, when built from these very sources, load before the .py files.
__path__ = search_path(__path__)
