"""A tiny web app that spends 20 ms on every request: load for the live autoscaling test."""
