"""spark-submit entry point for the analyze tier: `spark-submit jobs/analyze.py [RUN_ID]`.

Thin on purpose: the work is in the library, the same code the CLI and the DAGs run.
"""

import sys

from riskcontrol.orchestration import TIERS, job_main

if __name__ == "__main__":
    sys.exit(job_main(TIERS["analyze"], sys.argv))
