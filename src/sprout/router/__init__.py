"""Sprout's data plane: a reverse proxy with health checks, weights, draining, safe retries and metrics."""
