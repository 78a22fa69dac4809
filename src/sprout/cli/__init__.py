"""The `sprout` command line."""
