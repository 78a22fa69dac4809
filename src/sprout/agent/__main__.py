"""`python -m sprout.agent --spec FILE`: start one instance without loading the CLI's dependencies."""

import sys

from sprout.agent.main import main

sys.exit(main())
