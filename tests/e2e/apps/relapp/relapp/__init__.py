"""A release test app: GET /, POST /echo and /healthz, its version in `X-Sprout-Version`."""
