"""The read-only web dashboard the daemon serves: sign-in by one-time link, one page of live state."""
