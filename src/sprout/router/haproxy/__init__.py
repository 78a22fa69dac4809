"""The HAProxy engine: Debian's HAProxy as the data plane, driven through its runtime API."""
