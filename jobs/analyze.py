"""spark-submit entry point for the analyze tier: `spark-submit jobs/analyze.py [RUN_ID]`.

Thin on purpose: the work is in the library, the same code the CLI and the DAGs run.
"""

import sys

from riskcontrol.orchestration import job_main

if __name__ == "__main__":
    sys.exit(
        job_main(
            (
                "build_silver",
                "resolve_entities",
                "build_gold",
                "build_feature_store",
                "check_quality",
                "train_models",
            ),
            sys.argv,
        )
    )
