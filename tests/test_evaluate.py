"""`riskctl evaluate-dataset` end to end on a generated messy loan file: models trained,
the report's counts equal to the generator's ground truth, runs in MLflow.

It fits the gradient-boosted trees and the network (their logging paths); the tree and
the scorecard go through the same code in test_models and the end-to-end run.
"""

from __future__ import annotations

import json

import pytest
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY

from riskcontrol.cli import main
from riskcontrol.core.config import get_settings
from riskcontrol.modeling import tracking
from riskcontrol.synthetic.generate import loanfile

pytestmark = pytest.mark.slow


def test_evaluate_dataset_trains_every_model_and_reconciles_the_file(spark, tmp_path, capsys):
    path = tmp_path / "loans.csv"
    truth = loanfile.write_loan_file(path, rows=3000, seed=11)
    out = tmp_path / "report.json"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {
            "RISK_HOME": str(tmp_path / "home"),
            "RISK_PII_KEY": TEST_PII_KEY,
            "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
            "RISK_SPARK_SHUFFLE_PARTITIONS": "2",
        }.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        argv = ["evaluate-dataset", str(path), "--target", truth["target"]]
        argv += ["--bad", ",".join(truth["bad_values"]), "--time-col", truth["time_col"]]
        argv += ["--drop", "member_id", "--report", str(out), "--kinds", "gbt,neural_network"]
        assert main.main(argv) == 0
        settings = get_settings()
    get_settings.cache_clear()
    report = json.loads(out.read_text())
    assert report["rows_read"] == truth["rows"]
    assert report["rows_used"] == truth["usable"]
    assert report["quarantined_by_reason"] == truth["quarantined_by_rule"]
    assert report["rows_quarantined"] == truth["quarantined"]
    assert report["reconciles"] is True
    assert report["bad_rate"] == round(truth["bads"] / truth["usable"], 6)
    assert report["split"]["method"] == "time"
    assert "member_id" in report["features"]["not_used"]
    assert set(report["models"]) == {"gbt", "neural_network"}
    client = tracking.client(settings)
    for kind, m in report["models"].items():
        # The generator's defaults follow a logistic model a good fit ranks at about 0.7;
        # on 600 test rows (about 95 bads) the standard error of an AUC is about 0.03, and
        # the network, fitted on 1,800 rows, is the noisiest.
        assert 0.55 < m["test_auc"] < 0.85, (kind, m)
        assert m["test_gini"] == pytest.approx(2 * m["test_auc"] - 1, abs=2e-6)
        assert m["train_rows"] + m["test_rows"] < truth["usable"]
        run = client.get_run(m["mlflow_run_id"])
        assert run.data.params["model_kind"] == kind
        assert run.data.metrics["oot_auc"] == pytest.approx(m["test_auc"], abs=1e-6)
    printed = capsys.readouterr().out
    assert f"{truth['rows']:,} rows read" in printed and "neural_network" in printed
