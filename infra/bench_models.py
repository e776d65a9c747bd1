"""How good are the models on a loan file nobody prepared for them? `make bench-models`.

For each size, a generated messy Lending-Club-like file (``loanfile``) goes through
``evaluate-dataset`` exactly as a user runs it (stratified split, every model kind,
cross-validated below RISK_CV_MAX_ROWS), and two plain scikit-learn references are fitted
on the same rows: logistic regression and histogram gradient boosting, each after median
imputation, scaling and one-hot encoding of the same cleaned columns. The references
train on the same training rows and are scored on the same test rows (and on the same
cross-validation folds when there are folds). scikit-learn is a peer here only; the
library never imports it.

Prints one table per size: rows, each reference's AUC, and each kind's test AUC, its
cross-validated mean ± sd, and its fit time; writes them to ``reports/bench_models.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def reference_models(numeric: list[str], categorical: list[str], seed: int) -> dict:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def prep() -> ColumnTransformer:
        return ColumnTransformer(
            [
                (
                    "num",
                    Pipeline([("imp", SimpleImputer(strategy="median")), ("sc", StandardScaler())]),
                    numeric,
                ),
                (
                    "cat",
                    Pipeline(
                        [
                            ("imp", SimpleImputer(strategy="constant", fill_value="__missing__")),
                            ("ohe", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
                        ]
                    ),
                    categorical,
                ),
            ]
        )

    return {
        "sklearn_logistic": lambda: Pipeline(
            [("prep", prep()), ("m", LogisticRegression(max_iter=2000))]
        ),
        "sklearn_hist_gbt": lambda: Pipeline(
            [("prep", prep()), ("m", HistGradientBoostingClassifier(random_state=seed))]
        ),
    }


def _frame(df, columns: list[str]):
    from riskcontrol.modeling.models import LABEL

    pdf = df.select(*columns, LABEL).toPandas()
    return pdf[columns], pdf[LABEL].astype(int).to_numpy()


def reference_scores(split, spec, seed: int) -> dict[str, dict]:
    from riskcontrol.modeling import metrics

    numeric, categorical = list(spec.numeric), list(spec.categorical)
    x_train, y_train = _frame(split.train, spec.columns)
    x_test, y_test = _frame(split.oot, spec.columns)
    for c in categorical:
        x_train[c], x_test[c] = x_train[c].astype(object), x_test[c].astype(object)
    out = {}
    for name, make in reference_models(numeric, categorical, seed).items():
        started = time.perf_counter()
        model = make().fit(x_train, y_train)
        seconds = time.perf_counter() - started
        auc = metrics.auc(model.predict_proba(x_test)[:, 1], y_test)
        out[name] = {"auc": auc, "seconds": seconds}
    return out


def reference_cv(data, spec, folds: int, repeats: int, seed: int) -> dict[str, list[float]]:
    from riskcontrol.modeling import crossval
    from riskcontrol.modeling.models import LABEL

    aucs: dict[str, list[float]] = {}
    rows = data.select(*spec.columns, LABEL)
    for repeat in range(repeats):
        folded = crossval.with_folds(rows, folds, seed, repeat).localCheckpoint(eager=True)
        for fold in range(folds):
            scores = reference_scores(crossval.fold_split(folded, folds, fold), spec, seed)
            for name, s in scores.items():
                aucs.setdefault(name, []).append(s["auc"])
    return aucs


def bench(rows: int, seed: int, home: Path, kinds: str | None) -> dict:
    from riskcontrol.cli.common import load_settings, start_spark
    from riskcontrol.lenderfile import evaluate
    from riskcontrol.synthetic.generate import loanfile

    os.environ["RISK_HOME"] = str(home)
    settings = load_settings(**({"model_kinds": kinds} if kinds else {}))
    spark = start_spark(settings)
    path = Path(tempfile.mkdtemp(prefix="bench-models-")) / f"loans_{rows}.csv"
    truth = loanfile.write_loan_file(path, rows=rows, seed=seed)
    print(
        f"[{rows:,} rows] {path}: {truth['usable']:,} usable, bad rate "
        f"{truth['bads'] / truth['usable']:.2%}",
        flush=True,
    )
    args = (spark, settings, str(path), truth["target"], list(truth["bad_values"]), ["member_id"])
    cleaned = evaluate.land(*args)
    started = time.perf_counter()
    report = evaluate.evaluate_dataset(
        *args, seed=seed, progress=lambda m: print(m, flush=True), cleaned=cleaned
    )
    wall = time.perf_counter() - started
    spec = evaluate.feature_spec(cleaned, str(path))
    split = evaluate.split_of(cleaned, None, seed)
    refs = reference_scores(split, spec, seed)
    cv = report["cross_validation"]
    if cv:
        for name, aucs in reference_cv(
            cleaned.data, spec, cv["folds"], cv["repeats"], seed
        ).items():
            refs[name]["cv_auc_mean"] = float(np.mean(aucs))
            refs[name]["cv_auc_sd"] = float(np.std(aucs, ddof=1))
    spark.stop()
    return {
        "rows": rows,
        "usable": truth["usable"],
        "report": report,
        "references": refs,
        "evaluate_seconds": wall,
    }


def cell(auc: float, mean: float | None, sd: float | None) -> str:
    return f"{auc:.4f}" + (f"  ({mean:.4f} ± {sd:.4f})" if mean is not None else "")


def print_table(result: dict) -> None:
    report, refs = result["report"], result["references"]
    print(
        f"\n{result['rows']:,} rows ({result['usable']:,} usable); test AUC "
        f"(cross-validated mean ± sd) and fit seconds"
    )
    print(f"  {'model':18} {'AUC':>32} {'fit s':>8}")
    for name, r in refs.items():
        print(
            f"  {name:18} {cell(r['auc'], r.get('cv_auc_mean'), r.get('cv_auc_sd')):>32} "
            f"{r['seconds']:8.1f}"
        )
    for kind, m in report["models"].items():
        print(
            f"  {kind:18} {cell(m['test_auc'], m.get('cv_auc_mean'), m.get('cv_auc_sd')):>32} "
            f"{m['train_seconds']:8.1f}"
        )
    cv = report["cross_validation"]
    if cv:
        gaps = ", ".join(
            f"{k} {g['auc_gap']:+.4f} ({'noise' if g['within_noise'] else 'beyond noise'})"
            for k, g in cv["vs_best"].items()
        )
        print(f"  best by cross-validation: {cv['best']}; behind it: {gaps}")
    print(f"  evaluate-dataset wall time {result['evaluate_seconds']:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="5000,50000", help="comma-separated file sizes")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--kinds", default=None, help="model kinds (default: all)")
    parser.add_argument("--home", type=Path, default=None, help="project home (a temp dir)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_models.json")
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="bench-models-home-"))
    results = []
    for rows in [int(r) for r in args.rows.split(",") if r.strip()]:
        results.append(bench(rows, args.seed, home, args.kinds))
        print_table(results[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
