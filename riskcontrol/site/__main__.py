"""``python -m riskcontrol.site build|serve``: the site CLI without riskctl."""

import sys

from riskcontrol.site.cli import main

sys.exit(main())
