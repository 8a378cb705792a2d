"""``python -m devnet.hl_sim --data DIR --port P``: see ``devnet.hl_sim.cli``."""

import sys

from devnet.hl_sim.cli import main

sys.exit(main())
