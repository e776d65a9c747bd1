"""Compatibility path for model versions saved before the sub-package layout (issue 14).

Pipelines fitted by riskcontrol up to the flat layout recorded their custom stage as
``riskcontrol.models.ProbabilityOfDefault``; Spark ML imports that path when such a model
is loaded (``riskctl score``, ``riskctl apply``, MLflow's ``spark`` flavor). The class now
lives in ``riskcontrol.modeling.stages``; this module only re-exports it. Keep it while
any registered version was trained before that move; re-registering (``riskctl train``)
writes the new path. Nothing else belongs here.
"""

from riskcontrol.modeling.stages import ProbabilityOfDefault

__all__ = ["ProbabilityOfDefault"]
