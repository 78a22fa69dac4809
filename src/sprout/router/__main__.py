"""`python -m sprout.router`: the router (its supervisor and a worker), without the rest of the CLI."""

from __future__ import annotations

import sys

from sprout.router.supervisor import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
