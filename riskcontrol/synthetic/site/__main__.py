"""``python -m riskcontrol.synthetic.site build|serve``: the site CLI without riskctl."""

import sys

from riskcontrol.synthetic.site.cli import main

sys.exit(main())
