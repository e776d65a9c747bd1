"""Synthetic Chinese internet-finance lending book: the pipeline's source systems.

``generate(out_dir, ...)`` writes, deterministically for a seed:

* ``lending.db``: SQLite "lending system" (customers, applications, loans, repayments);
* ``landing/settlements/settlement_YYYYMM.csv``: payment-processor settlement files
  (header variants, UTF-8/GBK, RFC 4180 quoting, money and date formats, faults);
* ``landing/bureau/bureau_YYYYMM.jsonl``: one credit report per application;
* ``landing/events/events_YYYYMM.jsonl``: app/device events before each application;
* ``landing/notes/notes_YYYYMM.txt``: free-text customer-service notes;
* ``generation.json``: counts, label statistics and exact injected-fault counts;
* ``truth/rejected_outcomes.csv``: what each historically rejected application would
  have done had it been lent (reject inference's ground truth; the pipeline never reads
  it).

Defaults are driven by a latent risk the observable fields reveal only partly, so a
model can reach a realistic, not perfect, discrimination.
"""

from riskcontrol.synthetic.generate.generator import GenerationSummary, generate
from riskcontrol.synthetic.generate.population import id_check_digit, is_valid_national_id

__all__ = ["GenerationSummary", "generate", "id_check_digit", "is_valid_national_id"]
