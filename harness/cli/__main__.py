"""`python -m harness.cli …`: the same commands as `harness …` (what subprocess tests and job scripts call)."""

import sys

from harness.cli import main

sys.exit(main())
