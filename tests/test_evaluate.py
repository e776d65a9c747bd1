"""`riskctl evaluate-dataset` end to end on a generated messy loan file: models trained,
the report's counts equal to the generator's ground truth, runs in MLflow.

It fits the gradient-boosted trees and the network (their logging paths); the tree and
the scorecard go through the same code in test_models and the end-to-end run. A second,
smaller file is cross-validated (the tree and the logistic baseline, repeated folds).
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
    argv = [str(path), "--target", truth["target"]]
    argv += ["--bad", ",".join(truth["bad_values"]), "--time-col", truth["time_col"]]
    argv += ["--drop", "member_id", "--kinds", "gbt,neural_network", "--cv", "never"]
    report, settings = _evaluate(tmp_path, argv)
    assert report["rows_read"] == truth["rows"]
    assert report["rows_used"] == truth["usable"]
    assert report["quarantined_by_reason"] == truth["quarantined_by_rule"]
    assert report["rows_quarantined"] == truth["quarantined"]
    assert report["reconciles"] is True
    assert report["bad_rate"] == round(truth["bads"] / truth["usable"], 6)
    assert report["split"]["method"] == "time"
    assert "member_id" in report["features"]["not_used"]
    assert set(report["models"]) == {"gbt", "neural_network"}
    assert report["cross_validation"] is None and "cv_auc_mean" not in report["models"]["gbt"]
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


def _evaluate(tmp_path, argv: list[str]) -> tuple[dict, object]:
    """`riskctl evaluate-dataset` in a home of its own; the report and the settings."""
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
        assert main.main(["evaluate-dataset", *argv, "--report", str(out)]) == 0
        settings = get_settings()
    get_settings.cache_clear()
    return json.loads(out.read_text()), settings


def test_a_small_file_is_cross_validated_with_mean_sd_and_a_noise_verdict(spark, tmp_path, capsys):
    path = tmp_path / "small.csv"
    truth = loanfile.write_loan_file(path, rows=1200, seed=5)
    argv = [str(path), "--target", truth["target"], "--bad", ",".join(truth["bad_values"])]
    argv += ["--drop", "member_id", "--kinds", "logistic,decision_tree"]
    argv += ["--folds", "3", "--repeats", "2"]  # --cv auto: 1,200 rows is below 20,000
    report, settings = _evaluate(tmp_path, argv)
    cv = report["cross_validation"]
    assert (cv["folds"], cv["repeats"]) == (3, 2)
    assert set(cv["by_kind"]) == {"logistic", "decision_tree"}
    for kind, stats in cv["by_kind"].items():
        # Six folds of about 360 rows (about 55 bads): every kind ranks, with some spread.
        assert 0.55 < stats["cv_auc_mean"] < 0.9, (kind, stats)
        assert 0.0 < stats["cv_auc_sd"] < 0.1, (kind, stats)
        assert report["models"][kind]["cv_auc_mean"] == stats["cv_auc_mean"]
    best = cv["best"]
    other = ({"logistic", "decision_tree"} - {best}).pop()
    assert cv["by_kind"][best]["cv_auc_mean"] >= cv["by_kind"][other]["cv_auc_mean"]
    gap = cv["vs_best"][other]
    assert gap["auc_gap"] == pytest.approx(
        cv["by_kind"][best]["cv_auc_mean"] - cv["by_kind"][other]["cv_auc_mean"], abs=2e-6
    )
    assert gap["within_noise"] == (gap["p_value"] >= 0.05)
    run = tracking.client(settings).get_run(report["models"]["logistic"]["mlflow_run_id"])
    assert run.data.metrics["cv_auc_mean"] == pytest.approx(
        cv["by_kind"]["logistic"]["cv_auc_mean"], abs=1e-6
    )
    printed = capsys.readouterr().out
    assert "cross-validation 2/2 fold 3/3: decision_tree AUC" in printed
    assert f"cross-validation (2 x 3 folds): best {best}" in printed
    verdict = "within noise" if gap["within_noise"] else "worse beyond noise"
    assert f"(p = {gap['p_value']:.3f}): {verdict}" in printed


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--folds", "2"], "at least 3 folds"),
        (["--repeats", "0"], "at least 3 folds (test, validation, train) and 1 repeat"),
        (["--tune-seconds", "-1"], "a search budget is 0 (none) or positive"),
    ],
)
def test_bad_cross_validation_or_budget_flags_are_refused_before_any_work(
    tmp_path, capsys, flags, message
):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RISK_HOME", str(tmp_path / "home"))
        get_settings.cache_clear()
        code = main.main(["evaluate-dataset", str(path), "--target", "b", "--bad", "2", *flags])
    get_settings.cache_clear()
    assert code != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
