"""Credit models: splits, imbalance, the five kinds, MLflow logging and the champion rule."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from riskcontrol.modeling import metrics, models, tracking
from riskcontrol.modeling.models import FeatureSpec, Split

SPEC = FeatureSpec(("x1", "x2", "x3"), ("c",), log=("x3",), month="month")
MONTHS = [f"2023-{m:02d}" for m in range(1, 11)]


def synthetic_book(n: int = 2400, seed: int = 5) -> pd.DataFrame:
    """Applications over 10 months; default odds rise with x1 and level 'c', fall with x2."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    x3 = rng.lognormal(3, 1, size=n)
    c = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    logit = -2.6 + 1.1 * x1 - 0.7 * x2 + 0.9 * (c == "c")
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    frame = pd.DataFrame(
        {
            "id": [f"A{i:05d}" for i in range(n)],
            "month": [MONTHS[i % len(MONTHS)] for i in range(n)],
            "x1": x1,
            "x2": x2,
            "x3": x3,
            "c": c,
            "label": label,
        }
    )
    frame.loc[::37, "x2"] = np.nan  # missing values the pipeline must impute
    return frame


@pytest.fixture(scope="module")
def book_split(spark):
    df = spark.createDataFrame(synthetic_book())
    split = models.time_split(df, valid_months=2, oot_months=2, month_col="month").cache()
    yield split
    split.unpersist()


def test_time_split_takes_the_last_months_out_of_time(spark):
    rows = [(f"2024-{m:02d}", float(m % 2)) for m in range(1, 9) for _ in range(2)]
    df = spark.createDataFrame(rows, "application_month string, label double")
    split = models.time_split(df, valid_months=2, oot_months=3)
    assert split.windows == {
        "train": "2024-01..2024-03",
        "valid": "2024-04..2024-05",
        "oot": "2024-06..2024-08",
    }
    assert (split.train.count(), split.valid.count(), split.oot.count()) == (6, 4, 6)
    with pytest.raises(ValueError, match="need at least 8"):
        models.time_split(df.where("application_month < '2024-08'"), 2, 4)


def test_a_window_without_bads_is_refused_by_name(spark):
    rows = [
        (f"2024-{m:02d}", 1.0 if m in (1, 3, 7) and i == 0 else 0.0)
        for m in range(1, 9)
        for i in range(3)
    ]
    split = models.time_split(
        spark.createDataFrame(rows, "application_month string, label double"), 2, 2
    )
    # valid = 2024-05..06 has no bad; train (01..04) has two, out-of-time (07..08) one.
    with pytest.raises(ValueError, match=r"valid 6 goods / 0 bads"):
        split.check_classes()


def test_stratified_split_cuts_each_class_at_the_same_shares(spark):
    rows = [(f"R{i:03d}", 1.0 if i < 20 else 0.0) for i in range(100)]
    split = models.stratified_split(spark.createDataFrame(rows, "id string, label double"), seed=1)
    counts = {
        name: sorted(
            (r["label"], r["n"]) for r in df.groupBy("label").agg(F.count("*").alias("n")).collect()
        )
        for name, df in models.split_frames(split).items()
    }
    # 20 bads and 80 goods cut 60/20/20 each: 12/4/4 bads, 48/16/16 goods.
    assert counts == {
        "train": [(0.0, 48), (1.0, 12)],
        "valid": [(0.0, 16), (1.0, 4)],
        "oot": [(0.0, 16), (1.0, 4)],
    }
    again = models.stratified_split(spark.createDataFrame(rows, "id string, label double"), 1)
    assert sorted(r.id for r in again.oot.collect()) == sorted(r.id for r in split.oot.collect())


def test_balanced_weight_and_prior_correction(spark):
    df = spark.createDataFrame([(1.0,)] * 5 + [(0.0,)] * 15, "label double")
    assert models.balanced_weight(df, "balanced") == 3.0
    assert models.balanced_weight(df, "none") == 1.0
    probs = spark.createDataFrame(
        [(1, Vectors.dense([0.5, 0.5])), (2, Vectors.dense([0.8, 0.2]))], ["id", "probability"]
    )
    got = models.ProbabilityOfDefault("probability", 3.0).transform(probs)
    # Odds divided by the weight: 0.5/(0.5 + 0.5*3) = 0.25; 0.2/(0.2 + 0.8*3) = 1/13.
    assert [round(r.pd, 12) for r in got.orderBy("id").collect()] == [0.25, round(1 / 13, 12)]


def test_platt_scaling_calibrates_gbt_on_the_validation_window_without_reranking(spark, book_split):
    weight = models.balanced_weight(book_split.train, "balanced")
    params = {"maxIter": 10, "maxDepth": 3, "minInstancesPerNode": 20, "stepSize": 0.3}
    model, _ = models.fit("gbt", book_split, SPEC, params, seed=3, bad_weight=weight)
    calibration = model.calibration
    assert calibration["method"] == "platt" and calibration["a"] > 0
    stage = model.stages[-1]
    assert stage.platt == (calibration["a"], calibration["b"])
    valid = models.predictions(model, book_split.valid, SPEC)
    # At the likelihood's optimum the validation PDs add up to its bads exactly.
    assert valid["pd"].sum() == pytest.approx(valid["label"].sum(), abs=1e-8)
    uncalibrated = models.predictions(
        PipelineModel(
            stages=[*model.stages[:-1], models.ProbabilityOfDefault("probability", weight)]
        ),
        book_split.valid,
        SPEC,
    )
    assert abs(uncalibrated["pd"].sum() - valid["pd"].sum()) > 1.0  # it did move the PDs
    assert metrics.auc(valid["pd"], valid["label"]) == pytest.approx(
        metrics.auc(uncalibrated["pd"], uncalibrated["label"]), abs=1e-12
    )
    # One class cannot be rescaled: the PDs are left as fitted, and the reason says why.
    assert models.platt_calibrate(model, book_split.valid.where("label = 0")) == {
        "method": "none",
        "reason": "Platt scaling needs both goods and bads",
    }
    assert stage.platt is None  # left as fitted


def test_the_custom_stage_loads_from_its_stable_path_and_from_the_old_flat_path(spark, tmp_path):
    """Saved pipelines name the stage's class; versions saved before the sub-package layout
    name ``riskcontrol.models.ProbabilityOfDefault`` and must still load."""
    probs = spark.createDataFrame(
        [(1, Vectors.dense([0.5, 0.5])), (2, Vectors.dense([0.8, 0.2]))], ["id", "probability"]
    )
    PipelineModel(stages=[models.ProbabilityOfDefault("probability", 3.0)]).write().save(
        str(tmp_path / "pd")
    )
    (meta,) = (tmp_path / "pd" / "stages").glob("0_*/metadata/part-*")
    text = meta.read_text()
    saved = json.loads(text)
    assert saved["class"] == "riskcontrol.modeling.stages.ProbabilityOfDefault"
    # A version saved before Platt scaling existed names neither of its params.
    for params in (saved["paramMap"], saved["defaultParamMap"]):
        assert params.pop("plattA") == 1.0 and params.pop("plattB") == 0.0
    text = json.dumps(saved)
    meta.write_text(text.replace("riskcontrol.modeling.stages.", "riskcontrol.models."))
    for crc in meta.parent.glob(".*.crc"):
        crc.unlink()  # the checksum of the rewritten file no longer matches
    loaded = PipelineModel.load(str(tmp_path / "pd"))
    (stage,) = loaded.stages
    assert type(stage) is models.ProbabilityOfDefault and stage.platt is None
    got = loaded.transform(probs).orderBy("id").collect()
    assert [round(r.pd, 12) for r in got] == [0.25, round(1 / 13, 12)]


@pytest.mark.parametrize("kind", models.MODEL_KINDS)
def test_each_kind_ranks_risk_out_of_time_and_scores_raw_rows(spark, book_split, kind):
    params = dict(models.DEFAULT_PARAMS[kind])
    params.update(
        {
            "decision_tree": {"minInstancesPerNode": 40, "maxDepth": 4},
            "gbt": {"maxIter": 10, "minInstancesPerNode": 20},
            "neural_network": {"rounds": 4},
            "scorecard": {},
            "logistic": {},
        }[kind]
    )
    weight = models.balanced_weight(book_split.train, "balanced")
    tm = models.train_kind(kind, book_split, SPEC, params, seed=3, bad_weight=weight, cutoff=0.2)
    m = tm.metrics
    # The true model's out-of-time AUC on this book is about 0.78; every kind must rank.
    assert 0.65 < m["oot_auc"] < 0.9, m
    assert math.isclose(m["oot_gini"], 2 * m["oot_auc"] - 1)
    # Prior correction keeps the mean PD near the observed bad rate despite the weights.
    assert abs(m["train_mean_pd"] - m["train_bad_rate"]) < 0.05, m
    assert set(tm.importance["permutation"]) == {"x1", "x2", "x3", "c"}
    assert max(tm.importance["permutation"], key=tm.importance["permutation"].get) == "x1"
    # Raw rows with a missing value and an unseen level still get a PD in [0, 1].
    raw = spark.createDataFrame(
        [(None, 0.0, 10.0, "zzz"), (2.0, None, None, None)],
        "x1 double, x2 double, x3 double, c string",
    )
    pds = [r.pd for r in tm.model.transform(raw).select("pd").collect()]
    assert len(pds) == 2 and all(0.0 <= p <= 1.0 for p in pds)
    # Reason codes the way scoring adds them (test_explain and test_scorecard check the
    # values): every row gets at most three of the model's features, most rows some.
    reference = (
        models.reference_values(book_split.train, SPEC) if kind in models.OCCLUSION_KINDS else None
    )
    champion = tracking.Champion(tm.model, "m", "1", kind, "r", reference, SPEC)
    rows = book_split.oot.orderBy("id").limit(40)
    explained = models.with_reason_codes(champion, rows, tm.model.transform(rows), id_col="id")
    codes = [r.reason_codes for r in explained.select("reason_codes").collect()]
    assert len(codes) == 40
    assert all(set(c) <= {"x1", "x2", "x3", "c"} and len(c) <= 3 for c in codes)
    assert max(len(c) for c in codes) == 3


def test_champion_rule_in_both_directions():
    first = tracking.decide("1", 0.70, None, None, margin=0.01)
    assert first.promote and first.reason == "no champion yet"
    better = tracking.decide("2", 0.72, "1", 0.70, margin=0.01)
    assert better.promote
    assert better.reason == (
        "out-of-time AUC 0.7200 beats the champion's 0.7000 by the margin 0.0100 "
        "(difference +0.0200)"
    )
    short = tracking.decide("3", 0.705, "1", 0.70, margin=0.01)
    assert not short.promote
    assert "does not beat" in short.reason
    assert tracking.decide("4", 0.71, "1", 0.70, margin=0.01).promote  # exactly the margin
    assert not tracking.decide("1", 0.9, "1", 0.9, margin=0.0).promote
    # The gain must be beyond noise, and the PDs calibrated.
    noise = tracking.decide("5", 0.72, "1", 0.70, margin=0.01, p_value=0.2, calibration_p=0.5)
    assert not noise.promote
    assert noise.reason == (
        "out-of-time AUC 0.7200 beats the champion's 0.7000 by the margin 0.0100 "
        "(difference +0.0200); the gain is within noise (DeLong p 0.2000 >= 0.05); its PDs "
        "pass the calibration test (Hosmer-Lemeshow p 0.5000 >= 0.01)"
    )
    shifted = tracking.decide("6", 0.72, "1", 0.70, margin=0.01, p_value=0.001, calibration_p=0.004)
    assert not shifted.promote
    assert shifted.reason.endswith(
        "the gain is beyond noise (DeLong p 0.0010 < 0.05); its PDs fail the calibration "
        "test (Hosmer-Lemeshow p 0.0040 < 0.01)"
    )
    both = tracking.decide("7", 0.72, "1", 0.70, margin=0.01, p_value=0.049, calibration_p=0.01)
    assert both.promote and (both.p_value, both.calibration_p) == (0.049, 0.01)
    first_uncalibrated = tracking.decide("1", 0.7, None, None, margin=0.01, calibration_p=0.0)
    assert first_uncalibrated.promote  # something must score; the failure is on record
    assert first_uncalibrated.reason == (
        "no champion yet; its PDs fail the calibration test (Hosmer-Lemeshow p 0.0000 < "
        "0.01), but there is nothing to compare it with"
    )


def _fixed_model(expr: str) -> PipelineModel:
    return PipelineModel(stages=[SQLTransformer(statement=f"SELECT *, {expr} AS pd FROM __THIS__")])


def test_promote_moves_the_champion_only_for_a_calibrated_gain_beyond_noise(spark, settings):
    import mlflow
    import mlflow.spark

    settings.promotion_margin = 0.02
    # 40 out-of-time rows, 20 bads and 20 goods (good i scores i/100 under every model
    # but `strong`). `strong` separates them perfectly (AUC 1), with PDs near the observed
    # rates; `low` ranks exactly as `strong` with PDs a tenth of them. `weak` puts 10
    # bads above every good and 10 at 0.095, above half the goods: AUC (10 + 10 * 0.5) /
    # 20 = 0.75. `weak_plus` moves one of those 10 above every good: AUC 0.775.
    rows = []
    for i in range(20):
        rows.append((0.0, 0.1 + i / 200, i / 100, i / 100))
        middle = 0.095 if i < 10 else 0.9
        rows.append((1.0, 0.7 + i / 200, middle, 0.9 if i == 0 else middle))
    oot = spark.createDataFrame(rows, "label double, strong double, weak double, plus double")
    oot = oot.withColumn("month", F.lit("2024-01"))
    split = Split(oot, oot, oot, "time", {"oot": "2024-01..2024-01"})
    client = tracking.client(settings)
    exp = tracking.experiment_id(settings)

    def register(expr: str) -> str:
        with mlflow.start_run(experiment_id=exp):
            info = mlflow.spark.log_model(
                _fixed_model(expr),
                artifact_path="model",
                registered_model_name="application_pd",
                pip_requirements=["pyspark"],
            )
        return str(info.registered_model_version)

    weak = register("weak")
    d1 = tracking.promote(settings, split, challenger=weak)
    assert (d1.promote, d1.challenger_auc, d1.champion_version, d1.p_value) == (
        True,
        0.75,
        None,
        None,
    )
    assert tracking.alias_version(settings, "champion") == weak

    # +0.025 beats the margin, but it is one bad's ranking. DeLong: the bads' paired
    # differences are 0.5 once in 20 (variance 0.0125, over 20 bads 0.000625), the goods'
    # 0.05 for the 10 above 0.095 (variance 0.000658, over 20 goods 0.0000329): se 0.02565,
    # z 0.975, p 0.1649.
    plus = register("plus")
    d2 = tracking.promote(settings, split, challenger=plus)
    assert (d2.promote, d2.challenger_auc, d2.champion_auc) == (False, 0.775, 0.75)
    assert d2.p_value == pytest.approx(0.1649, abs=1e-4)
    assert "the gain is within noise (DeLong p 0.1649 >= 0.05)" in d2.reason

    # A real gain (+0.25, p 0.0010) from PDs a tenth of the observed rates: refused.
    low = register("strong / 10")
    d3 = tracking.promote(settings, split, challenger=low)
    assert (d3.promote, d3.challenger_auc) == (False, 1.0)
    assert d3.p_value == pytest.approx(0.0010, abs=1e-4) and d3.calibration_p < 1e-6
    assert "its PDs fail the calibration test" in d3.reason
    assert tracking.alias_version(settings, "champion") == weak

    strong = register("strong")
    d4 = tracking.promote(settings, split, challenger=strong)
    assert (d4.promote, d4.challenger_auc, d4.champion_auc) == (True, 1.0, 0.75)
    assert d4.calibration_p >= 0.01
    assert tracking.alias_version(settings, "champion") == strong
    record = json.loads(client.get_model_version("application_pd", strong).tags["promotion"])
    assert record["oot_rows"] == 40 and record["p_value"] == pytest.approx(0.0010, abs=1e-4)

    weak_again = register("weak")
    tracking.set_challenger(settings, weak_again)
    d5 = tracking.promote(settings, split)
    assert (d5.promote, d5.challenger_version, d5.champion_auc) == (False, weak_again, 1.0)
    assert tracking.alias_version(settings, "champion") == strong
    assert tracking.alias_version(settings, "challenger") == weak_again
    tag = client.get_model_version("application_pd", weak_again).tags["promotion"]
    assert '"promote": false' in tag and "does not beat" in tag

    forced = tracking.promote(settings, split, challenger=weak_again, force=True)
    assert forced.promote and forced.reason.startswith("forced by the operator")
    assert tracking.alias_version(settings, "champion") == weak_again
    listed = {r["version"]: r["aliases"] for r in tracking.list_versions(settings)}
    assert listed == {1: [], 2: [], 3: [], 4: [], 5: ["champion"]}


def test_paired_scores_keep_each_row_with_its_own_scores(spark):
    df = spark.createDataFrame(
        [(float(i % 2), i / 10) for i in range(10)], "label double, x double"
    ).repartition(3)
    scorers = {
        "same": _fixed_model("x"),
        "reversed": _fixed_model("1 - x"),
    }
    frame = tracking.paired_scores(scorers, df)
    assert len(frame) == 10
    assert np.allclose(frame["same"] + frame["reversed"], 1.0)
    assert list(frame["label"]) == [round(x * 10) % 2 for x in frame["same"]]


def test_train_and_log_records_lineage_plots_trials_and_the_model(spark, book_split, settings):
    import mlflow

    settings.tune_trials = 2
    settings.tune_sampler = "nsga2"
    lineage = [tracking.Lineage("gold.book", "/nowhere", None)]
    private = replace(SPEC, not_reasons=("x1",))  # read, never given as a reason
    trained = tracking.train_and_log(
        book_split,
        private,
        settings,
        kinds=("decision_tree", "scorecard"),
        seed=1,
        lineage=lineage,
        example=book_split.oot.select(*SPEC.columns),
        run_label="t1",
        registered_model="application_pd",
        tags={"pipeline_run_id": "t1"},
    )
    assert [(t.kind, t.version, t.trials) for t in trained] == [
        ("decision_tree", "1", 2),
        ("scorecard", "2", 2),
    ]
    client = tracking.client(settings)
    for tm in trained:
        run = client.get_run(tm.run_id)
        assert run.data.params["model_kind"] == tm.kind
        assert run.data.params["lineage.gold.book"] == "None"
        assert run.data.params["window.oot"] == "2023-09..2023-10"
        for metric in ("oot_auc", "oot_ks", "oot_brier", "psi_train_oot", "valid_auc"):
            assert metric in run.data.metrics
        files = {
            f.path
            for top in ("plots", "evaluation", "model", "explain")
            for f in client.list_artifacts(tm.run_id, top)
        }
        assert {
            "plots/roc.png",
            "plots/ks_oot.png",
            "plots/calibration_oot.png",
            "plots/score_distribution.png",
            "plots/importance.png",
            "plots/auc_by_month.png",
            "evaluation/calibration_oot.json",
            "evaluation/confusion_oot.json",
            "evaluation/psi_train_oot.json",
            "evaluation/auc_by_month.json",
            "explain/importance.json",
            "model/MLmodel",
            "model/input_example.json",
        } <= files
        mlmodel = mlflow.artifacts.load_text(f"runs:/{tm.run_id}/model/MLmodel")
        assert "signature:" in mlmodel and "x1" in mlmodel
        trials = client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{tm.run_id}'"
        )
        assert len(trials) == 2
        assert {t.data.tags["sampler"] for t in trials} == {"nsga2"}
        version = client.get_model_version("application_pd", tm.version)
        assert version.tags["model_kind"] == tm.kind
    sql = mlflow.artifacts.load_text(f"runs:/{trained[1].run_id}/scorecard/score.sql")
    assert sql.startswith("CAST(LEAST(GREATEST(ROUND(CASE WHEN x1 < ")
    # A registered version reads back with the features it was trained on and the ones it
    # may not give as a reason; x1, the strongest driver, scores but is never a reason.
    tracking.set_challenger(settings, "2")
    loaded = tracking.load_alias(settings, "challenger")
    assert loaded.spec == private
    scored = loaded.model.transform(book_split.oot).select("x1", "reason_codes").collect()
    assert scored and not any("x1" in r.reason_codes for r in scored)
    assert any(r.reason_codes for r in scored)


def test_defaults_grow_with_the_training_rows():
    assert models.size_factor(900) == 0.0 and models.size_factor(2_000_000) == 1.0
    assert models.size_factor(31_623) == pytest.approx(0.5, abs=1e-5)
    small = {k: models.default_params(k, 900) for k in models.MODEL_KINDS}
    middle = {k: models.default_params(k, 31_623) for k in models.MODEL_KINDS}
    large = {k: models.default_params(k, 1_000_000) for k in models.MODEL_KINDS}
    assert small == {
        "decision_tree": {"maxDepth": 4, "minInstancesPerNode": 25, "maxBins": 32},
        "gbt": {
            "maxIter": 40,
            "maxDepth": 2,
            "stepSize": 0.05,
            "subsamplingRate": 0.8,
            "minInstancesPerNode": 20,
        },
        "neural_network": {"hidden": 8, "step": 10, "rounds": 12, "patience": 3},
        "scorecard": {"max_bins": 5, "min_iv": 0.02},
        "logistic": {"regParam": 0.05, "elasticNetParam": 0.0, "maxIter": 100},
    }
    assert middle["gbt"] == {
        "maxIter": 80,
        "maxDepth": 4,  # 2 + round(1.5): Python rounds half to even
        "stepSize": 0.075,
        "subsamplingRate": 0.8,
        "minInstancesPerNode": 500,
    }
    assert middle["decision_tree"]["minInstancesPerNode"] == 632
    assert middle["logistic"]["regParam"] == 0.0019  # 60 / 31,623 to two digits
    assert large["gbt"] == {
        "maxIter": 120,
        "maxDepth": 5,
        "stepSize": 0.1,
        "subsamplingRate": 0.8,
        "minInstancesPerNode": 500,
    }
    assert large["neural_network"] == {"hidden": 32, "step": 10, "rounds": 30, "patience": 3}
    assert large["decision_tree"] == {"maxDepth": 8, "minInstancesPerNode": 1000, "maxBins": 32}
    assert large["logistic"]["regParam"] == 0.0001 and large["scorecard"]["max_bins"] == 8
    # Every kind's parameter names are the same at every size (the search and the
    # cross-validation key on them).
    for k in models.MODEL_KINDS:
        assert set(small[k]) == set(large[k]) == set(models.DEFAULT_PARAMS[k])
    with pytest.raises(ValueError, match="unknown model kind 'forest'"):
        models.default_params("forest", 1000)


def test_train_and_log_fits_with_the_defaults_for_its_training_rows(spark, book_split, settings):
    settings.tune_trials = 0
    goods, bads = book_split.check_classes()["train"]
    (tm,) = tracking.train_and_log(
        book_split,
        SPEC,
        settings,
        kinds=("logistic",),
        seed=1,
        lineage=[],
        run_label="rows",
        registered_model=None,
    )
    assert goods + bads == 1440  # six of the ten months of 2,400 applications
    assert tm.params == {"regParam": 0.042, "elasticNetParam": 0.0, "maxIter": 100}
    run = tracking.client(settings).get_run(tm.run_id)
    assert run.data.params["regParam"] == "0.042"
    # The calibration test per window: k - 2 degrees of freedom on the rows it was fitted
    # on, k on the others; the out-of-time table carries each bin's observed-rate interval.
    for window, fitted in (("train", True), ("valid", False), ("oot", False)):
        frame = tm.evaluation.scores[window]
        want = metrics.hosmer_lemeshow(frame["pd"], frame["label"], fitted=fitted)
        assert run.data.metrics[f"{window}_hl_p"] == pytest.approx(want["p_value"])
        assert run.data.metrics[f"{window}_hl_stat"] == pytest.approx(want["statistic"])
    table = tm.evaluation.calibration
    assert len(table) == 10 and sum(r["n"] for r in table) == len(tm.evaluation.scores["oot"])
    assert all(r["rate_low"] <= r["bad_rate"] <= r["rate_high"] for r in table)
    assert {"expected", "inside"} <= set(table[0])
