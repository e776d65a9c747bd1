"""The risk team's web workbench: reviews, alerts, policy approvals, audit."""
