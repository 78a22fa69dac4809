"""`python -m sprout.controlplane`: the daemon process (started detached by `sprout daemon start`)."""

import sys

from sprout.controlplane.daemon import main

sys.exit(main())
