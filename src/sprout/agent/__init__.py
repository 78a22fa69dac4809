"""The instance agent: bootstraps a version bundle like cloud user data, then supervises the app.

Kept free of imports on purpose: `python -m sprout.agent` is on every instance's start path.
"""
