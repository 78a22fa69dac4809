"""The control plane's HTTP API: bearer-token auth and the routes the CLI calls."""
