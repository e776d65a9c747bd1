"""The risk report: exact figures in the HTML, self-contained, rendered by headless Chromium
(DOM text and decoded images, and a PDF), and `collect` over small hand-written tables."""

from __future__ import annotations

import base64
import html
import json
import re
import struct
import subprocess
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from riskcontrol.apply import report
from riskcontrol.apply.report import ReportData
from riskcontrol.apply.scoring import QUADRANT_STRATEGY
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    GOLD_ALERTS,
    GOLD_CUTOFF_POLICY,
    GOLD_LOAN_BOOK_RISK,
    GOLD_SCORED_APPLICATIONS,
    GOLD_WARNING_INDICATORS,
)

AS_OF = date(2024, 6, 30)
NOW = datetime(2024, 7, 1, 6, 30, tzinfo=UTC)

# Quadrant cells of the book: loans, exposure, expected loss (they sum to the portfolio).
CELLS = {
    "A": (900, 5_000_000.0, 50_000.0),
    "B": (150, 4_000_000.0, 80_000.0),
    "C": (120, 1_500_000.0, 60_000.0),
    "D": (64, 1_845_678.9, 44_567.4),
}


def _cutoff_frame() -> pd.DataFrame:
    """The active policy v3's sweep, least control first; 0.12 chosen (and optimal)."""
    cut = [0.30, 0.20, 0.15, 0.12, 0.08]
    return pd.DataFrame(
        {
            "policy_version": 3,
            "cutoff_pd": cut,
            "approve_below_pd": [c - 0.02 for c in cut],
            "applications": 5000,
            "approved": [4900, 4600, 4300, 3987, 3000],
            "reviewed": [50, 200, 300, 400, 500],
            "rejected": [100, 400, 700, 1013, 2000],
            "approval_rate": [0.98, 0.92, 0.86, 0.7974, 0.60],
            "bad_rate": [0.09, 0.07, 0.05, 0.0412, 0.03],
            "control_effect": [10_000.0, 90_000.0, 180_000.0, 260_500.0, 300_000.0],
            "control_cost": [20_000.0, 60_000.0, 110_000.0, 150_250.0, 320_000.0],
            "net_benefit": [-10_000.0, 30_000.0, 70_000.0, 110_250.0, -20_000.0],
            "marginal_effect": [10_000.0, 80_000.0, 90_000.0, 80_500.0, 39_500.0],
            "marginal_cost": [20_000.0, 40_000.0, 50_000.0, 40_250.0, 169_750.0],
            "residual_risk": [0.05, 0.04, 0.031, 0.0275, 0.02],
            "risk_tolerance": 0.03,
            "area": [1, 2, 2, 3, 4],
            "area_name": ["invalid", "weaker", "weaker", "reasonable", "override"],
            "optimal": [False, False, False, True, False],
            "chosen": [False, False, False, True, False],
            "status": "active",
            "model_name": "application_pd",
            "model_version": "7",
            "population": "oot 2024-01..2024-03",
            "created_at": pd.Timestamp("2024-06-01 08:00"),
        }
    )


def _indicators() -> pd.DataFrame:
    """Five days of three overall series, and channel rows on the last day."""
    rows = []
    days = pd.date_range("2024-06-26", "2024-06-30").date
    series = {
        "dpd1_rate": ([0.030, 0.031, 0.033, 0.036, 0.061], 0.06, 0.09),
        "dpd30_rate": ([0.010, 0.010, 0.011, 0.012, 0.012], 0.03, 0.05),
        "score_psi": ([0.02, 0.03, 0.02, 0.04, 0.05], 0.10, 0.25),
    }
    for name, (values, warn, crit) in series.items():
        for day, v in zip(days, values, strict=True):
            status = "critical" if v >= crit else "warning" if v >= warn else "ok"
            rows.append((day, name, "overall", "all", v, warn, crit, status))
    rows += [
        (AS_OF, "dpd30_rate", "channel", "partner_a", 0.1234, 0.03, 0.05, "critical"),
        (AS_OF, "dpd30_rate", "channel", "app", 0.0100, 0.03, 0.05, "ok"),
        (AS_OF, "dpd30_rate", "channel", "tiny", None, 0.03, 0.05, "too_few"),
    ]
    frame = pd.DataFrame(rows, columns=list(report.INDICATOR_COLUMNS))
    calibrated = "file limits.yaml: calibrated 2024-01-01..2024-06-25: mean 0.01, sd 0.004"
    return frame.assign(
        threshold_source=[
            calibrated if name == "dpd30_rate" else "default: generated books"
            for name in frame["indicator"]
        ]
    )


def _alerts() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("0f0e0d0c0b0a0908", "dpd1_rate", "overall", "all", "warning", "A", "identify",
             date(2024, 6, 30), date(2024, 6, 30), 0.061, 0.06, 12_345_678.9),
            ("a1b2c3d4e5f60718", "dpd30_rate", "channel", "<b>partner_a</b>", "critical", "D",
             "assess", date(2024, 6, 20), date(2024, 6, 30), 0.1234, 0.05, 250_000.0),
        ],
        columns=list(report.ALERT_COLUMNS),
    )  # fmt: skip


def make_data(**changes) -> ReportData:
    quadrants = pd.DataFrame(
        {
            "quadrant": list(CELLS),
            "strategy": [QUADRANT_STRATEGY[q] for q in CELLS],
            "loans": [c[0] for c in CELLS.values()],
            "exposure": [c[1] for c in CELLS.values()],
            "expected_loss": [c[2] for c in CELLS.values()],
        }
    )
    values = {
        "as_of": AS_OF,
        "generated_at": NOW,
        "portfolio": {
            "active_loans": 1234,
            "exposure": 12_345_678.9,
            "expected_loss": 234_567.4,
            "el_rate": 234_567.4 / 12_345_678.9,
            "dpd30_rate": 0.0421,
            "applications_scored": 5678,
            "approve": 4000,
            "review": 1000,
            "reject": 678,
            "approval_rate": 5000 / 5678,
        },
        "application_scores": [420, 480, 560, 610, 640, 700, 720, 800],
        "book_scores": [500, 550, 600, 600, 650, 690, 710, 760, 820],
        "quadrants": quadrants,
        "cutoff": _cutoff_frame(),
        "indicators": _indicators(),
        "alerts": _alerts(),
        "model": {
            "name": "application_pd",
            "version": "7",
            "kind": "gbt",
            "oot_auc": 0.78341,
            "oot_ks": 0.43212,
            "oot_gini": 0.56682,
            "psi": 0.0312,
            "trained_at": datetime(2024, 6, 1, 8, 0, tzinfo=UTC),
        },
        "auc_by_month": pd.DataFrame(
            {"month": ["2024-01", "2024-02", "2024-03"], "auc": [0.79, None, 0.77]}
        ),
        "policy": {
            "policy_version": 3,
            "cutoff_pd": 0.12,
            "approve_below_pd": 0.10,
            "risk_tolerance": 0.03,
            "source": "gold.cutoff_policy",
            "quadrant_pd_threshold": 0.10,
            "quadrant_impact_threshold": 9000.0,
            "lgd": 0.45,
        },
    }
    values.update(changes)
    return ReportData(**values)


# Key figures of make_data() as a reader sees them.
KEY_FIGURES = [
    "Risk report as of 2024-06-30",
    "application_pd v7 (gbt)",
    "Cut-off policy: v3",
    "1,234",  # active loans
    "12,345,679",  # exposure
    "234,567",  # expected loss
    "1.90%",  # EL rate
    "4.21%",  # 30+ DPD
    "5,678",  # applications scored
    "88.06%",  # approval rate incl. review
    "12.00%",  # chosen cut-off PD
    "110,250",  # its net benefit
    "3 reasonable",
    "a1b2c3d4e5f60718",
    "0f0e0d0c0b0a0908",
    "0.7834",  # AUC
    "0.4321",  # KS
    "0.5668",  # Gini
    "0.0312 (stable)",  # PSI
]


def _cell(page: str, quadrant: str) -> str:
    (cell,) = re.findall(rf'<td class="q-{quadrant}">(.*?)</td>', page, flags=re.S)
    return re.sub(r"<[^>]+>", "", cell)


def _png_size(uri: str) -> tuple[int, int]:
    raw = base64.b64decode(uri.removeprefix("data:image/png;base64,"))
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", raw[16:24])


def test_report_html_figures_matrix_and_self_contained():
    page = report.render_html(make_data())
    text = re.sub(r"<[^>]+>", " ", page)
    for figure in KEY_FIGURES:
        assert figure in text, figure
    # 2 x 2: probability in rows (high first), impact in columns (low first).
    order = re.findall(r'<td class="q-([ABCD])">', page)
    assert order == ["C", "D", "A", "B"]
    assert "High probability (PD &gt;= 10.00%)" in page
    assert "High impact (EAD x LGD &gt;= 9,000)" in page
    assert _cell(page, "A") == (
        "ALoans: 900Exposure: 5,000,000Expected loss: 50,000periodic review"
    )
    assert _cell(page, "D").startswith("DLoans: 64Exposure: 1,845,679Expected loss: 44,567")
    # the latest day's breaches: the critical segment row first, then the overall warning
    breaches = page.split("Breaches on 2024-06-30")[1].split("</table>")[0]
    assert re.findall(r"<td>(dpd\w+)</td><td>(\w+)</td><td>([^<]+)</td>", breaches) == [
        ("dpd30_rate", "channel", "partner_a"),
        ("dpd1_rate", "overall", "all"),
    ]
    # each breach says where its thresholds come from
    assert re.findall(r"<td>((?:file|default)[^<]*)</td>", breaches) == [
        "file limits.yaml: calibrated 2024-01-01..2024-06-25: mean 0.01, sd 0.004",
        "default: generated books",
    ]
    # open alerts: critical first; days open from the first breach to the as-of day
    alerts = page.split('id="alerts"')[1].split("</table>")[0]
    assert alerts.index("a1b2c3d4e5f60718") < alerts.index("0f0e0d0c0b0a0908")
    assert '<span class="sev sev-critical">critical</span>' in alerts
    assert '<td>assess</td><td class="n">2024-06-20</td><td class="n">10</td>' in alerts
    # text is escaped
    assert "channel: &lt;b&gt;partner_a&lt;/b&gt;" in alerts
    assert "<b>partner_a</b>" not in page
    # nothing is fetched: no external src/href, CSS url() or script
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, flags=re.I)
    assert "url(" not in page and "<script" not in page and "@import" not in page
    images = re.findall(r"<img\b[^>]*>", page)
    sources = [re.search(r'src="([^"]*)"', img).group(1) for img in images]
    assert len(sources) == 4  # scores, cut-off balance, indicator trends, AUC by month
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert [_png_size(s)[0] > 300 for s in sources] == [True] * 4
    # one page per section when printed
    assert page.count("<section ") == 9  # with the policy backtest
    assert "section + section { break-before: page; page-break-before: always; }" in page


def test_report_shows_expected_loss_by_stage():
    cells = pd.DataFrame(
        {
            "quadrant": ["A", "A", "C", "D"],
            "score": [700, 650, 520, 400],
            "stage": [1, 1, 2, 3],
            "n": [10, 5, 2, 1],
            "exposure": [10_000.0, 5_000.0, 2_000.0, 1_000.0],
            "expected_loss": [100.0, 50.0, 400.0, 450.0],
        }
    )
    stages = report._stage_table(cells)
    assert stages.to_dict("list") == {
        "stage": ["1", "2", "3", "total"],
        "loans": [15, 2, 1, 18],
        "ead": [15_000.0, 2_000.0, 1_000.0, 18_000.0],
        "expected_loss": [150.0, 400.0, 450.0, 1_000.0],
        "coverage": [0.01, 0.2, 0.45, 1_000.0 / 18_000.0],
    }
    html = report.render_html(make_data(stages=stages))
    section = html[html.index('<section id="stages">') :]
    section = section[: section.index("</section>")]
    assert "Expected loss by stage" in section
    assert section.count("<tr>") == 5  # the header, stages 1-3 and the total
    assert (
        "<td>2</td><td>30+ DPD (backstop) or a significant increase in risk: lifetime PD</td>"
        in section
    )
    assert '<td class="n">2,000</td><td class="n">400</td><td class="n">20.00%</td>' in section
    assert '<td class="n">18</td><td class="n">18,000</td><td class="n">1,000</td>' in section
    # a snapshot written before stages existed: no stage table, no section
    assert report._stage_table(cells.assign(stage=None)) is None
    assert '<section id="stages">' not in report.render_html(make_data())


def test_report_empty_sections():
    empty = make_data(
        portfolio={},
        application_scores=[],
        book_scores=[],
        quadrants=pd.DataFrame(
            columns=["quadrant", "strategy", "loans", "exposure", "expected_loss"]
        ),
        cutoff=None,
        indicators=pd.DataFrame(columns=list(report.INDICATOR_COLUMNS)),
        alerts=pd.DataFrame(columns=list(report.ALERT_COLUMNS)),
        model={},
        auc_by_month=None,
        policy={"policy_version": None, "source": "configuration (no active cut-off policy)"},
    )
    page = report.render_html(empty)
    for message in (
        "Model: no champion model",
        "Cut-off policy: none active (configured thresholds)",
        "no scores: nothing scored yet",
        "no active cut-off policy: decisions use the configured thresholds",
        "no indicators computed for this period",
        "no open alerts",
        "no champion model registered: run `riskctl train`",
    ):
        assert message in page, message
    assert "<img" not in page
    # every quadrant cell still shows, with zeros and its strategy
    assert _cell(page, "B") == ("BLoans: 0Exposure: 0Expected loss: 0" + QUADRANT_STRATEGY["B"])


def test_report_realtime_section_from_the_decision_log():
    page = report.render_html(make_data())
    assert "no gold.decision_log: the service made no decision" in page
    service = {
        "decisions": 8,
        "since": date(2026, 11, 5),
        "approve": 5,
        "review": 2,
        "reject": 1,
        "approval_rate": 5 / 8,
        "p50_ms": 4.3,
        "p99_ms": 31.5,
        "challenger_agreement": 0.75,
    }
    hits = pd.DataFrame({"code": ["KO_BLOCKLIST", "RF_VELOCITY"], "hits": [1, 2]})
    hits["rate"] = hits["hits"] / 8
    page = report.render_html(make_data(service=service, rule_hits=hits))
    section = page.split('<section id="realtime">')[1].split("</section>")[0]
    text = re.sub(r"<[^>]+>", "|", section)
    cells = [c for c in text.split("|") if c.strip()]
    assert cells == [
        "Real-time decisions (riskctl serve)",
        "Decisions since 2026-11-05.",
        "Measure",
        "value",
        "Decisions",
        "8",
        "Approve / review / reject",
        "5 / 2 / 1",
        "Approval rate (approve only)",
        "62.50%",
        "Latency p50 / p99 (ms)",
        "4.3 / 31.5",
        "Champion-challenger agreement",
        "75.00%",
        "Rule",
        "Hits",
        "Hit rate",
        "KO_BLOCKLIST",
        "1",
        "12.50%",
        "RF_VELOCITY",
        "2",
        "25.00%",
    ]


def _chromium() -> str:
    found = report.find_chromium()
    if found is None:
        pytest.fail(
            "no Chromium on PATH: the report is checked in headless Chromium. Install it with "
            "`apt-get install chromium` (Debian; or run `bash infra/ci/setup-system.sh`)"
        )
    return found


# Appended to a copy of the report: on load, what the browser rendered, as JSON.
PROBE = """<script>
window.addEventListener("load", () => {
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({
    text: document.body.innerText,
    images: [...document.images].map(i => [i.complete, i.naturalWidth, i.naturalHeight]),
    matrix: [...document.querySelectorAll("table.matrix tbody tr")].map(
      r => [...r.querySelectorAll("td")].map(c => c.className)),
  });
  document.body.appendChild(out);
});
</script>"""


def test_report_renders_in_headless_chromium(tmp_path):
    chromium = _chromium()
    data = make_data()
    html_path, pdf_path = report.write_report(data, tmp_path / "reports")
    assert html_path == tmp_path / "reports" / "risk_report_2024-06-30.html"
    page = html_path.read_text(encoding="utf-8")
    probe_page = tmp_path / "probe.html"
    probe_page.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            report.chromium_command(
                chromium, Path(profile), "--dump-dom", probe_page.resolve().as_uri()
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"the probe did not run: {done.stdout[-500:]} {done.stderr[-1500:]}"
    rendered = json.loads(html.unescape(found.group(1)))
    for figure in KEY_FIGURES:
        assert figure in rendered["text"], figure
    assert "channel: <b>partner_a</b>" in rendered["text"]  # shown as text, not markup
    assert rendered["matrix"] == [["q-C", "q-D"], ["q-A", "q-B"]]
    # every chart decoded, at the PNG's own size
    sources = re.findall(r'<img [^>]*src="(data:image/png;base64,[^"]+)"', page)
    assert rendered["images"] == [[True, *_png_size(s)] for s in sources]
    assert len(rendered["images"]) == 4
    # the PDF: one page per section at least
    assert pdf_path == html_path.with_suffix(".pdf")
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-")
    pages = max(int(n) for n in re.findall(rb"/Type\s*/Pages\b[^>]*?/Count (\d+)", pdf))
    assert pages >= 7


def test_write_report_without_chromium_and_when_it_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "find_chromium", lambda: None)
    html_path, pdf_path = report.write_report(make_data(cutoff=None), tmp_path)
    assert (html_path.name, pdf_path) == ("risk_report_2024-06-30.html", None)
    assert list(tmp_path.iterdir()) == [html_path]
    with pytest.raises(RuntimeError, match=r"could not print .* to PDF \(exit 1\)"):
        report.print_pdf("false", html_path, tmp_path / "r.pdf")


def test_champion_metrics_from_the_registry(settings, monkeypatch):
    """The version holding the champion alias, its metrics and its AUC by month."""
    import mlflow.artifacts

    from riskcontrol.modeling import tracking

    settings.home.joinpath("mlflow.db").write_bytes(b"")  # a store exists
    versions = [
        {"version": 6, "kind": "tree", "aliases": [], "oot_auc": 0.70, "oot_ks": 0.3,
         "oot_gini": 0.4, "psi_train_oot": 0.2, "created": 1_700_000_000_000, "run_id": "r6"},
        {"version": 7, "kind": "gbt", "aliases": ["champion"], "oot_auc": 0.78341,
         "oot_ks": 0.43212, "oot_gini": 0.56682, "psi_train_oot": None,
         "created": 1_717_228_800_000, "run_id": "r7"},  # 2024-06-01 08:00 UTC
    ]  # fmt: skip
    monkeypatch.setattr(tracking, "list_versions", lambda s: versions)
    monkeypatch.setattr(tracking, "client", lambda s: None)
    loaded = []
    by_month = {
        "2024-01": {"n": 9, "bads": 2, "auc": 0.79},
        "2024-02": {"n": 3, "bads": 0, "auc": None},
    }
    monkeypatch.setattr(mlflow.artifacts, "load_dict", lambda uri: loaded.append(uri) or by_month)
    model, auc = report.champion_metrics(settings)
    assert model == {
        "name": "application_pd",
        "version": "7",
        "kind": "gbt",
        "oot_auc": 0.78341,
        "oot_ks": 0.43212,
        "oot_gini": 0.56682,
        "psi": None,
        "trained_at": datetime(2024, 6, 1, 8, 0, tzinfo=UTC),
    }
    assert loaded == ["runs:/r7/evaluation/auc_by_month.json"]
    assert auc["month"].tolist() == ["2024-01", "2024-02"]
    assert auc["auc"].tolist()[0] == 0.79 and pd.isna(auc["auc"].tolist()[1])
    page = report.render_html(make_data(model=model, auc_by_month=auc))
    assert "<td>PSI (out-of-time vs training)</td><td>n/a</td>" in page
    versions[1]["aliases"] = []
    assert report.champion_metrics(settings) == ({}, None)


# --- collect over small Delta tables ----------------------------------------------------
def _write(spark, table, rows, settings):
    lakehouse.overwrite(spark.createDataFrame(rows, table.schema), table, settings)


def _book_row(as_of, loan_id, score, ead, el, dpd, quadrant):
    return {
        "as_of_date": as_of,
        "loan_id": loan_id,
        "application_id": f"APP-{loan_id}",
        "customer_key": "ck",
        "channel": "app",
        "province": "GD",
        "disbursed_date": date(2024, 1, 5),
        "principal": ead,
        "ead": ead,
        "dpd": dpd,
        "dpd_bucket": "current" if dpd == 0 else "30-59",
        "pd": 0.05,
        "score": score,
        "lgd": 0.45,
        "expected_loss": el,
        "risk_band": "low",
        "impact": ead * 0.45,
        "quadrant": quadrant,
        "strategy": QUADRANT_STRATEGY[quadrant],
        "model_name": "application_pd",
        "model_version": "7",
        "scored_at": datetime(2024, 6, 30, 2),
    }


def _app_row(app_id, score, decision):
    return {
        "application_id": app_id,
        "customer_key": "ck",
        "application_date": date(2024, 6, 29),
        "requested_amount": 5000.0,
        "pd": 0.05,
        "score": score,
        "risk_band": "low",
        "impact": 2250.0,
        "quadrant": "A",
        "strategy": QUADRANT_STRATEGY["A"],
        "decision": decision,
        "policy_version": "2",
        "reason_codes": ["r1"],
        "model_name": "application_pd",
        "model_version": "7",
        "feature_time": datetime(2024, 6, 29),
        "scored_at": datetime(2024, 6, 30),
    }


def _policy_row(version, cutoff, status, chosen):
    sweep = _cutoff_frame().iloc[3].to_dict()  # any row's figures will do
    return {
        **sweep,
        "policy_version": version,
        "cutoff_pd": cutoff,
        "approve_below_pd": round(cutoff - 0.02, 10),
        "optimal": chosen,
        "chosen": chosen,
        "status": status,
        "created_at": datetime(2024, 6, 1),
    }


def _indicator_row(day, segment_type, segment, value, status):
    return {
        "as_of_date": day,
        "indicator": "dpd30_rate",
        "segment_type": segment_type,
        "segment": segment,
        "value": value,
        "numerator": 1.0,
        "denominator": 10.0,
        "warning_threshold": 0.03,
        "critical_threshold": 0.05,
        "status": status,
        "exposure": 1000.0,
        "run_id": "run",
        "computed_at": datetime(2024, 6, 30),
    }


def _alert_row(alert_id, stage):
    return {
        "alert_id": alert_id,
        "indicator": "dpd30_rate",
        "segment_type": "channel",
        "segment": "partner_a",
        "severity": "critical",
        "first_breach_date": date(2024, 6, 20),
        "last_breach_date": date(2024, 6, 30),
        "value": 0.12,
        "threshold": 0.05,
        "exposure": 250_000.0,
        "quadrant": "D",
        "playbook": ["step"],
        "stage": stage,
        "history": [
            {"stage": "identify", "at": datetime(2024, 6, 20), "by": "system", "note": "opened"}
        ],
        "opened_at": datetime(2024, 6, 20),
        "updated_at": datetime(2024, 6, 30),
    }


def test_collect_from_gold_tables(spark, settings):
    with pytest.raises(FileNotFoundError, match=r"gold\.loan_book_risk .*`riskctl book`"):
        report.collect(spark, settings)
    _write(
        spark,
        GOLD_LOAN_BOOK_RISK,
        [
            _book_row(date(2024, 6, 29), "L0", 400, 99_999.0, 9_999.0, 0, "D"),  # older day
            _book_row(AS_OF, "L1", 650, 1000.0, 10.0, 0, "A"),
            _book_row(AS_OF, "L2", 600, 30_000.0, 600.0, 35, "B"),
            _book_row(AS_OF, "L3", 550, 40_000.0, 3_000.0, 0, "D"),
            _book_row(AS_OF, "L4", 500, 50_000.0, 6_000.0, 95, "D"),
        ],
        settings,
    )
    _write(
        spark,
        GOLD_SCORED_APPLICATIONS,
        [_app_row("P1", 700, "approve"), _app_row("P2", 640, "review"), _app_row("P3", 420,
         "reject"), _app_row("P4", 700, "approve")],
        settings,
    )  # fmt: skip
    _write(
        spark,
        GOLD_CUTOFF_POLICY,
        [_policy_row(1, 0.15, "retired", True), _policy_row(2, 0.12, "active", True),
         _policy_row(2, 0.10, "active", False)],
        settings,
    )  # fmt: skip
    _write(
        spark,
        GOLD_WARNING_INDICATORS,
        [
            _indicator_row(date(2024, 3, 2), "overall", "all", 0.01, "ok"),  # before look-back
            _indicator_row(date(2024, 3, 3), "overall", "all", 0.02, "ok"),
            _indicator_row(AS_OF, "channel", "partner_a", 0.12, "critical"),
            _indicator_row(date(2024, 7, 1), "overall", "all", 0.02, "ok"),  # after as-of
        ],
        settings,
    )
    _write(
        spark,
        GOLD_ALERTS,
        [_alert_row("a-open", "assess"), _alert_row("a-closed", "feedback")],
        settings,
    )
    data = report.collect(spark, settings)

    assert data.as_of == AS_OF
    assert data.portfolio == {
        "active_loans": 4,
        "exposure": 121_000.0,
        "expected_loss": 9_610.0,
        "el_rate": 9_610.0 / 121_000.0,
        "dpd30_rate": 0.5,
        "applications_scored": 4,
        "approve": 2,
        "review": 1,
        "reject": 1,
        "approval_rate": 0.75,
    }
    assert data.book_scores == [500, 550, 600, 650]
    assert data.application_scores == [420, 640, 700, 700]
    assert data.quadrants.to_dict("list") == {
        "quadrant": ["A", "B", "C", "D"],
        "strategy": [QUADRANT_STRATEGY[q] for q in "ABCD"],
        "loans": [1, 1, 0, 2],
        "exposure": [1000.0, 30_000.0, 0.0, 90_000.0],
        "expected_loss": [10.0, 600.0, 0.0, 9_000.0],
    }
    assert data.cutoff[["policy_version", "cutoff_pd", "chosen"]].values.tolist() == [
        [2, 0.10, False],
        [2, 0.12, True],
    ]
    assert {k: data.policy[k] for k in ("policy_version", "cutoff_pd", "risk_tolerance")} == {
        "policy_version": 2,
        "cutoff_pd": 0.12,
        "risk_tolerance": 0.03,
    }
    assert data.policy["approve_below_pd"] == pytest.approx(0.10)
    assert sorted(
        (str(r.as_of_date), r.segment, r.status) for r in data.indicators.itertuples()
    ) == [("2024-03-03", "all", "ok"), ("2024-06-30", "partner_a", "critical")]
    assert data.alerts["alert_id"].tolist() == ["a-open"]
    assert list(data.alerts.columns) == list(report.ALERT_COLUMNS)
    # MLflow was never used in this home: no champion, and no tracking store created
    assert (data.model, data.auc_by_month) == ({}, None)
    assert not (settings.home / "mlflow.db").exists()
    page = report.render_html(data)
    assert "no champion model registered" in page
    assert "Cut-off policy: v2" in page


def test_report_backtest_section_from_the_latest_backtest():
    """The latest gold.policy_backtests backtest (read back as its summary) in the report:
    both policies, the guard flags, the figures per inference method with the bad rate's
    range, the swap sets; escaped; and a plain line when there is none."""
    from test_backtest import ACTIVE, COST, EDGES, history

    from riskcontrol.apply import backtest_store
    from riskcontrol.apply.backtest import Policy, replay
    from riskcontrol.apply.formats import MISSING

    proposed = Policy("grow <2>", "challenger", 0.15, 0.30)
    result = replay(history(), ACTIVE, proposed, COST, band_edges=EDGES)
    flag = "approval rate rises & more"
    rows = backtest_store.records(result, [flag], backtest_id="b7", window="2025-01..2025-03",
                                  created_at=datetime(2026, 12, 1, 9, 30))  # fmt: skip
    page = report.render_html(make_data(backtest=backtest_store.summary(rows)))
    section = page.split('<section id="backtest">')[1].split("</section>")[0]
    assert (
        "Backtest b7 of 2026-12-01 09:30: proposed grow &lt;2&gt; (model challenger; approve "
        "below PD 0.150, reject from 0.300) against the active v1 (model logistic v3; approve "
        "below PD 0.100, reject from 0.200), on the applications decided in 2025-01..2025-03."
    ) in section
    assert "<li>approval rate rises &amp; more</li>" in section
    cells = re.findall(r"<td(?: class=\"n\")?>([^<]*)</td>", section)
    # known outcomes: the active policy lends 1, 2, 3, 4, 8, 9, 12 (7 of 12; KO_DISHONEST_DEBTOR
    # rejects 6 and 10), bads 2 and 4 of the 6 known; the proposed lends all but 7 (11),
    # known 1, 2, 3, 4, 8, 9: also 2 of 6
    assert cells[:14] == [
        "known outcomes", "active", "7", "58.3%", "33.33%",
        f"{result.metric('active', 'expected_loss'):,.0f}",
        f"{result.metric('active', 'profit'):,.0f}",
        "known outcomes", "proposed", "11", "91.7%", "33.33%",
        f"{result.metric('proposed', 'expected_loss'):,.0f}",
        f"{result.metric('proposed', 'profit'):,.0f}",
    ]  # fmt: skip
    low, high = (result.metric("proposed", f"bad_rate_{e}", "fuzzy") for e in ("low", "high"))
    fuzzy = f"{result.metric('proposed', 'bad_rate', 'fuzzy'):.2%} ({low:.1%}-{high:.1%})"
    assert low < high and fuzzy in cells
    # swap-in: 5, 6, 10, 11 (4 applications, 5,000 lent), none with a known outcome;
    # swap-out: none
    swaps = section.split("<th>Set</th>")[1]
    swap_cells = re.findall(r"<td(?: class=\"n\")?>([^<]*)</td>", swaps)
    assert swap_cells[:10] == [
        "known outcomes", "swap-in", "4", "5,000", MISSING,
        "known outcomes", "swap-out", "0", "0", MISSING,
    ]  # fmt: skip
    empty = report.render_html(make_data())
    assert "no policy backtest yet: `riskctl policy backtest --proposed FILE`" in empty
