"""The workbench as a person uses it: the real server (`riskctl workbench`, with its own
Spark over the test's lakehouse) driven by headless Chromium through Selenium.

One server and one browser for the module; the tests run in order and build on each
other's state, as a day at the risk desk does: log in as each role, work a review end to
end, advance an alert through every stage, propose a policy and approve it as another
user, and be refused without the role or the CSRF token. Planted ``<script>`` and
``onerror=`` payloads (a news title, an alert note, a review reason) stay inert text.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import TEST_BRONZE_KEY, TEST_PII_KEY, free_port, make_settings
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from riskcontrol.apply import alerts, scoring
from riskcontrol.core import lakehouse
from riskcontrol.core.catalog import (
    GOLD_CUTOFF_POLICY,
    GOLD_WARNING_INDICATORS,
    SILVER_COURT_RECORDS,
    SILVER_ENTITY_LINKS,
    SILVER_NEWS,
)
from riskcontrol.core.pii import hmac_hex
from riskcontrol.serve.journal import DecisionJournal
from riskcontrol.serve.journal import default_path as journal_path
from riskcontrol.workbench.store import WorkbenchStore, default_path

PW = "correct horse battery staple"
USERS = {
    "vera": "viewer",
    "andy": "analyst",
    "rita": "reviewer",
    "mona": "risk_manager",
    "abe": "approver",
    "alice": "approver",
    "root": "admin",
}
KEY = TEST_PII_KEY.encode()
# Planted where crawled and typed text is shown; inert means: shown as text, no element
# made of it, and the page's title untouched.
NEWS_TITLE = (
    '<script>document.title="pwned"</script>Lender fined '
    "<img src=x onerror=\"document.title='pwned'\">"
)
NOTE = (
    '<img src=x onerror="document.title=\'pwned\'">checked <script>document.title="pwned"</script>'
)
REASON = "<svg onload=\"document.title='pwned'\"></svg>income verified <script>x()</script>"
D1, D2, D3 = (dt.date(2026, 3, d) for d in (1, 2, 3))
STAMP = dt.datetime(2026, 3, 4, 8, 0)
SCREENSHOTS = os.environ.get("WORKBENCH_SCREENSHOTS")


def key(value: str) -> str:
    return hmac_hex(value.encode(), KEY)


def _decision(customer, decision, pd_, amount, rules_action="pass", fired=(), arm="champion"):
    return {
        "application_key": None,
        "customer_key": key(customer),
        "product": "consumer_loan",
        "decision": decision,
        "pd": pd_,
        "score": 600,
        "risk_band": "medium",
        "quadrant": "B",
        "champion": {"pd": pd_},
        "challenger": None,
        "features": {"requested_amount": amount, "age": 31, "monthly_income": 9000.0},
        "rules_action": rules_action,
        "rules_fired": list(fired),
        "arm": arm,
        "latency_ms": 4.0,
        "reasons": [{"code": "utilization", "source": "model", "en": "High use", "zh": "高"}],
        "decided_at": dt.datetime.now(dt.UTC).isoformat(),
    }


# The six applications of the unit tests' book (tests/test_workbench.py), so the preview
# figures are the same: current cut-off 0.08 / 0.20, proposed 0.11 / 0.25.
BOOK = {
    "A1": _decision("C1", "review", 0.10, 10_000),
    "A2": _decision("C2", "review", 0.12, 20_000, "review", ["RF_PENALTY"]),
    "A3": _decision("C3", "review", 0.08, 5_000, arm="challenger"),
    "A4": _decision("C4", "approve", 0.02, 8_000),
    "A5": _decision("C5", "approve", 0.04, 12_000),
    "A6": _decision("C6", "reject", 0.30, 15_000, "reject", ["KO_DEBTOR", "RF_PENALTY"]),
}


def _row(table, **values):
    row = dict.fromkeys(table.columns)
    row.update(values)
    return row


def _seed_lake(spark, settings):
    links = [
        _row(
            SILVER_ENTITY_LINKS,
            record_kind="news",
            record_id="N1",
            entity_type="customer",
            customer_id="C1",
            match_method="name+employer",
            confidence=0.9,
        ),
        _row(
            SILVER_ENTITY_LINKS,
            record_kind="court",
            record_id="K1",
            entity_type="customer",
            customer_id="C1",
            match_method="id_key",
            confidence=1.0,
        ),
        _row(
            SILVER_ENTITY_LINKS,
            record_kind="news",
            record_id="N2",
            entity_type="customer",
            customer_id="C9",
            match_method="name",
            confidence=0.7,
        ),
    ]
    news = [
        _row(
            SILVER_NEWS,
            record_id="N1",
            title=NEWS_TITLE,
            news_source="Daily",
            published_at=dt.datetime(2026, 2, 1, 9),
        ),
        _row(
            SILVER_NEWS,
            record_id="N2",
            title="Another customer's news",
            news_source="X",
            published_at=dt.datetime(2026, 2, 2, 9),
        ),
    ]
    court = [
        _row(
            SILVER_COURT_RECORDS,
            record_id="K1",
            case_no="(2025)京01执123号",
            court="北京一中院",
            subject_display="张*",
            list_type="enforcement",
            amount=50000.0,
            filing_date=dt.date(2025, 11, 3),
        ),
    ]
    for table, rows in (
        (SILVER_ENTITY_LINKS, links),
        (SILVER_NEWS, news),
        (SILVER_COURT_RECORDS, court),
    ):
        lakehouse.merge(spark.createDataFrame(rows, table.schema), table, settings)
    indicators = [
        (
            D1,
            "dpd30_rate",
            "channel",
            "partner_a",
            0.04,
            None,
            None,
            0.05,
            0.10,
            "ok",
            230_000.0,
            "run-1",
            STAMP,
            None,
        ),
        (
            D2,
            "dpd30_rate",
            "channel",
            "partner_a",
            0.06,
            None,
            None,
            0.05,
            0.10,
            "warning",
            240_000.0,
            "run-1",
            STAMP,
            None,
        ),
        (
            D3,
            "dpd30_rate",
            "channel",
            "partner_a",
            0.12,
            None,
            None,
            0.05,
            0.10,
            "critical",
            250_000.0,
            "run-1",
            STAMP,
            "default: generated books",
        ),
    ]
    df = spark.createDataFrame(indicators, GOLD_WARNING_INDICATORS.schema)
    lakehouse.merge(df, GOLD_WARNING_INDICATORS, settings)
    (opened,) = alerts.open_alerts(spark, settings, df, now=STAMP)
    return opened["alert_id"]


@pytest.fixture(scope="module")
def desk(spark, tmp_path_factory):
    """The seeded home, the server on a free port, and the alert's id."""
    home = tmp_path_factory.mktemp("workbench")
    settings = make_settings(home)
    store = WorkbenchStore(default_path(home))
    for name, role in USERS.items():
        store.add_user(name, role, PW, by="test")
    journal = DecisionJournal(journal_path(home))
    for app_id, record in BOOK.items():
        journal.record(key(app_id), {**record, "application_key": key(app_id)})
    alert_id = _seed_lake(spark, settings)
    port = free_port()
    env = {
        **os.environ,
        "RISK_HOME": str(home),
        "RISK_ENV": "test",
        "RISK_PII_KEY": TEST_PII_KEY,
        "RISK_BRONZE_KEY": TEST_BRONZE_KEY,
        "RISK_SPARK_SHUFFLE_PARTITIONS": "2",
        "RISK_SPARK_DRIVER_MEMORY": "2g",
    }
    riskctl = str(Path(sys.executable).with_name("riskctl"))
    log = (home / "server.log").open("w")
    proc = subprocess.Popen(
        [riskctl, "workbench", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, (home / "server.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        pytest.fail("the workbench did not answer in 180 s")
    yield {"url": url, "home": home, "settings": settings, "alert": alert_id, "store": store}
    proc.terminate()
    proc.wait(30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not chromium or not driver_bin:
        pytest.fail(
            "Chromium and its driver are needed: `apt-get install chromium chromium-driver` "
            "(or `bash infra/ci/setup-system.sh`)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    os.environ.setdefault("SE_OFFLINE", "true")  # never fetch a driver
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    driver.set_page_load_timeout(240)
    yield driver
    driver.quit()


def press(browser, element) -> None:
    """Click a button or link (an element or its id) and wait for the next page."""
    if isinstance(element, str):
        element = browser.find_element(By.ID, element)
    old = browser.find_element(By.TAG_NAME, "html")
    element.click()

    def gone(_) -> bool:
        try:
            old.tag_name  # noqa: B018 - asks the browser whether the old page is there
        except WebDriverException:  # stale, or a node of a document being replaced
            return True
        return False

    WebDriverWait(browser, 240).until(gone)
    WebDriverWait(browser, 240).until(EC.presence_of_element_located((By.TAG_NAME, "main")))


def login(browser, desk, user: str, password: str = PW) -> None:
    browser.delete_all_cookies()
    browser.get(f"{desk['url']}/login")
    browser.find_element(By.ID, "username").send_keys(user)
    browser.find_element(By.ID, "password").send_keys(password)
    press(browser, "submit")


def text(browser, css: str = "main") -> str:
    return browser.find_element(By.CSS_SELECTOR, css).text


def inert(browser) -> None:
    """No planted payload became an element or ran."""
    assert "pwned" not in browser.title
    assert browser.find_elements(By.CSS_SELECTOR, "main img, main svg[onload], main script") == []


def shot(browser, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


def session_cookie(browser) -> str:
    return browser.get_cookie("rk_session")["value"]


def csrf_of(browser) -> str:
    return browser.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")


# --- the tests, in the order of a day ---------------------------------------------------
NAV = {  # what each role's menu shows
    "viewer": ["Dashboard", "Alerts"],
    "analyst": ["Dashboard", "Review queue", "Alerts"],
    "reviewer": ["Dashboard", "Review queue", "Alerts"],
    "risk_manager": ["Dashboard", "Review queue", "Alerts", "Policy approvals", "Audit log"],
    "approver": ["Dashboard", "Review queue", "Alerts", "Policy approvals", "Audit log"],
    "admin": ["Dashboard", "Review queue", "Alerts", "Policy approvals", "Audit log", "Users"],
}


def test_each_role_logs_in_and_sees_its_menu_and_the_dashboard(desk, browser):
    for user, role in USERS.items():
        login(browser, desk, user)
        assert browser.current_url == f"{desk['url']}/"
        links = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "header > a")]
        assert links[:-1] == NAV[role], user
        assert text(browser, "#me") == f"{user} ({role.replace('_', ' ')})"
    kpi = text(browser, "#kpi-today").split("\n")
    assert kpi[:8] == [
        "Decisions",
        "6",
        "Approval rate",
        "33.3%",
        "Review rate",
        "50.0%",
        "Reject rate",
        "16.7%",
    ]
    matrix = text(browser, "#alert-matrix").split("\n")
    assert matrix == ["Severity A B C D", "Critical 0 0 0 1", "Warning 0 0 0 0"]
    assert (
        "dpd30_rate channel=partner_a 0.1200 0.0500 0.1000 critical default: generated books"
        in (text(browser, "#indicators"))
    )
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 2
    shot(browser, "dashboard")
    # in Chinese
    browser.get(f"{desk['url']}/?lang=zh")
    assert text(browser, "h1") == "总览"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    browser.get(f"{desk['url']}/?lang=en")


def test_a_wrong_password_is_refused_and_five_lock_the_user(desk, browser):
    login(browser, desk, "vera", "not the password")
    assert browser.current_url.endswith("/login")
    assert "Wrong user name or password" in text(browser, "#error")
    for _ in range(4):
        login(browser, desk, "vera", "not the password")
    login(browser, desk, "vera")  # the right password, but locked now
    assert "Wrong user name or password" in text(browser, "#error")
    desk["store"].reset("vera", by="test")  # what `riskctl users reset` does
    login(browser, desk, "vera")
    assert browser.current_url == f"{desk['url']}/"


def test_a_review_worked_end_to_end(desk, browser):
    login(browser, desk, "rita")
    browser.get(f"{desk['url']}/reviews")
    rows = browser.find_elements(By.CSS_SELECTOR, "#queue tr.item")
    assert [r.get_attribute("data-key") for r in rows] == [key("A1"), key("A2"), key("A3")]
    press(browser, rows[0].find_element(By.CSS_SELECTOR, "a.open"))
    assert text(browser, "#pd") == "0.1000"
    assert "utilization (model): High use" in text(browser, "#reasons")
    assert "requested_amount 10000" in text(browser, "#features")
    records = text(browser, "#records")
    assert "(2025)京01执123号 · 北京一中院 · 张* · enforcement · 50000.0" in records
    assert "Lender fined" in records and '<script>document.title="pwned"</script>' in records
    assert "Another customer's news" not in records  # linked to someone else
    inert(browser)
    shot(browser, "review")
    press(browser, "assign")
    assert text(browser, "#assignee") == "rita"
    browser.find_element(By.ID, "d-approve").click()
    browser.find_element(By.ID, "reason").send_keys(REASON)
    press(browser, "decide")
    assert text(browser, "#reviewed-as").startswith("Reviewed: approve by rita")
    assert REASON in text(browser, "#reviewed-as .reason")
    inert(browser)
    # the queue moved on; the journal holds the original decision and the review event
    browser.get(f"{desk['url']}/reviews")
    keys = [r.get_attribute("data-key") for r in browser.find_elements(By.CSS_SELECTOR, "tr.item")]
    assert keys == [key("A2"), key("A3")]
    journal = DecisionJournal(journal_path(desk["home"]))
    assert journal.get(key("A1")).record["decision"] == "review"
    review = journal.review_of(key("A1")).record
    assert (review["decision"], review["reviewer"], review["reason"]) == ("approve", "rita", REASON)
    browser.get(f"{desk['url']}/")
    assert text(browser, "#reviewed") == "Approve: 1 · Reject: 0"
    # a risk manager assigns the next one to a reviewer
    login(browser, desk, "mona")
    browser.get(f"{desk['url']}/reviews/{key('A2')}")
    options = browser.find_elements(By.CSS_SELECTOR, "#assignee-select option")
    assert [o.text for o in options] == ["abe", "alice", "mona", "rita", "root"]
    options[3].click()
    press(browser, "assign-other")
    assert text(browser, "#assignee") == "rita"
    # an analyst reads the queue but may not decide
    login(browser, desk, "andy")
    browser.get(f"{desk['url']}/reviews/{key('A2')}")
    assert browser.find_elements(By.ID, "decide") == []


def test_an_alert_advanced_through_every_stage(desk, browser):
    alert_id = desk["alert"]
    login(browser, desk, "andy")
    browser.get(f"{desk['url']}/alerts")
    assert alert_id in text(browser, "#alerts")
    press(browser, browser.find_element(By.LINK_TEXT, alert_id))
    assert text(browser, "#stage") == "identify"
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart polyline")) == 1
    assert text(browser, "#breaches").split("\n")[1:] == [
        "2026-03-02 0.0600 warning",
        "2026-03-03 0.1200 critical",
    ]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#playbook li")) >= 3
    shot(browser, "alert")
    press(browser, "advance")  # identify -> assess needs no note
    assert text(browser, "#stage") == "assess"
    press(browser, "advance")  # assess -> decide needs one
    assert "needs a note" in text(browser, "#refusal")
    browser.get(f"{desk['url']}/alerts/{alert_id}")
    for stage, note in (("decide", NOTE), ("dispose", "limits cut"), ("feedback", "fixed")):
        browser.find_element(By.ID, "note").send_keys(note)
        press(browser, "advance")
        assert text(browser, "#stage") == stage
    assert NOTE in text(browser, "#history")
    inert(browser)
    assert browser.find_elements(By.ID, "advance") == []
    history = text(browser, "#history").split("\n")[1:]
    assert [h.split()[0] for h in history] == [
        "identify",
        "assess",
        "decide",
        "dispose",
        "feedback",
    ]
    assert all("andy" in h.split() for h in history[1:])


def test_skipping_a_stage_is_refused_as_in_the_cli(desk, browser, spark):
    # A second breach key: a new alert, advanced by a crafted POST that skips a stage.
    settings = desk["settings"]
    df = spark.createDataFrame(
        [
            (
                D3,
                "dpd30_rate",
                "channel",
                "app",
                0.2,
                None,
                None,
                0.05,
                0.10,
                "critical",
                10_000.0,
                "run-2",
                STAMP,
                None,
            )
        ],
        GOLD_WARNING_INDICATORS.schema,
    )
    (opened,) = alerts.open_alerts(spark, settings, df, now=STAMP)
    login(browser, desk, "andy")
    browser.get(f"{desk['url']}/alerts/{opened['alert_id']}")
    token = csrf_of(browser)
    answer = httpx.post(
        f"{desk['url']}/alerts/{opened['alert_id']}/advance",
        cookies={"rk_session": session_cookie(browser)},
        data={"csrf": token, "note": "skip", "to_stage": "decide"},
    )
    assert answer.status_code == 409
    assert "the only allowed next stage is 'assess', not 'decide'" in html.unescape(answer.text)
    assert alerts.get_alert(spark, settings, opened["alert_id"])["stage"] == "identify"


def test_a_policy_proposed_by_one_and_approved_by_another(desk, browser, spark):
    login(browser, desk, "abe")
    browser.get(f"{desk['url']}/policies")
    assert text(browser, "#active").startswith("configured defaults: approve below PD 0.080")
    browser.find_element(By.ID, "approve_below_pd").send_keys("0.11")
    browser.find_element(By.ID, "reject_from_pd").send_keys("0.25")
    browser.find_element(By.ID, "rationale").send_keys("grow the prime segment")
    press(browser, "submit-cutoff")
    preview = text(browser, "#preview").split("\n")
    assert preview == [
        "Current Proposed",
        "Applications 6 6",
        "Approval rate 33.3% 66.7%",
        "Expected bad rate 3.0% 6.0%",
        "Expected loss of the approved 288.00 918.00",
    ]
    shot(browser, "policy")
    pid = re.search(r"/policies/(\d+)$", browser.current_url).group(1)
    press(browser, "approve")  # the proposer may not approve
    assert "maker-checker" in text(browser, "#refusal")
    # a risk manager may propose but not approve
    login(browser, desk, "mona")
    browser.get(f"{desk['url']}/policies/{pid}")
    assert browser.find_elements(By.ID, "approve") == []
    token = csrf_of(browser)
    answer = httpx.post(
        f"{desk['url']}/policies/{pid}/decide",
        cookies={"rk_session": session_cookie(browser)},
        data={"csrf": token, "decision": "approve"},
    )
    assert answer.status_code == 403
    assert scoring.active_policy(spark, desk["settings"]).version == "config"
    # another approver approves: the policy is active for the decision service
    login(browser, desk, "alice")
    browser.get(f"{desk['url']}/policies/{pid}")
    browser.find_element(By.ID, "note").send_keys("ok within appetite")
    press(browser, "approve")
    assert text(browser, "#status") == "approved"
    assert "active as gold.cutoff_policy v1" in text(browser, "main")
    assert scoring.active_policy(spark, desk["settings"]) == scoring.CutoffPolicy("1", 0.11, 0.25)
    # a rule set: a broken one is refused with its error, a valid one waits for approval
    login(browser, desk, "mona")
    browser.get(f"{desk['url']}/policies")
    rules_box = browser.find_element(By.ID, "rules-text")
    original = rules_box.get_attribute("value")
    assert original.startswith("# Policy rules of the decision service")
    rules_box.clear()
    rules_box.send_keys("version: broken\nrules: [")
    browser.find_elements(By.NAME, "rationale")[1].send_keys("tighten")
    press(browser, "submit-rules")
    assert "the proposed rules" in text(browser, "#refusal")
    browser.get(f"{desk['url']}/policies")
    rules_box = browser.find_element(By.ID, "rules-text")
    rules_box.clear()
    changed = original.replace('version: "example-1"', 'version: "desk-2"')
    rules_box.send_keys(changed)
    browser.find_elements(By.NAME, "rationale")[1].send_keys("new version label")
    press(browser, "submit-rules")
    assert "rules, version desk-2" in text(browser, "main")
    rules_file = desk["home"] / "service" / "rules.yaml"
    assert rules_file.read_text(encoding="utf-8") == original  # not before approval
    login(browser, desk, "abe")
    browser.get(f"{desk['url']}/policies")
    press(browser, browser.find_elements(By.CSS_SELECTOR, "#proposals a")[0])
    press(browser, "approve")
    assert text(browser, "#status") == "approved"
    assert rules_file.read_text(encoding="utf-8") == changed
    # a draft of `riskctl cutoff --draft` (or of any cut-off while RISK_POLICY_APPROVAL is
    # on) waits for the same approval
    settings = desk["settings"]
    drafted = [
        _row(
            GOLD_CUTOFF_POLICY,
            policy_version=2,
            cutoff_pd=0.30,
            approve_below_pd=0.10,
            approval_rate=0.70,
            bad_rate=0.05,
            residual_risk=0.02,
            chosen=True,
            optimal=True,
            status="draft",
            model_name="pd",
            model_version="3",
            created_at=STAMP,
            population="out-of-time 2026-01/02: 500 matured approved applications",
        ),
        _row(
            GOLD_CUTOFF_POLICY,
            policy_version=2,
            cutoff_pd=0.35,
            approve_below_pd=0.10,
            chosen=False,
            optimal=False,
            status="draft",
            created_at=STAMP,
        ),
    ]
    df = spark.createDataFrame(drafted, GOLD_CUTOFF_POLICY.schema)
    scoring.write_policy_version(spark, settings, df, activate=False)
    login(browser, desk, "mona")
    browser.get(f"{desk['url']}/policies")
    assert text(browser, "#draft-version").startswith("v2: 0.100 / 0.300 · Approval rate 70.0%")
    browser.find_element(By.ID, "draft-rationale").send_keys("the new sweep")
    press(browser, "submit-draft")
    assert "draft v2: approve below PD 0.100, reject from 0.300" in text(browser, "main")
    assert text(browser, "#sweep").startswith(
        "On the out-of-time window of its sweep: Approval rate 70.0% · Expected bad rate 5.0%"
        " · Residual risk 2.0% · out-of-time 2026-01/02"
    )
    assert scoring.active_policy(spark, settings).version == "1"
    login(browser, desk, "alice")
    browser.get(f"{desk['url']}/policies")
    press(browser, browser.find_elements(By.CSS_SELECTOR, "#proposals a")[0])
    press(browser, "approve")
    assert "active as gold.cutoff_policy v2" in text(browser, "main")
    assert scoring.active_policy(spark, settings) == scoring.CutoffPolicy("2", 0.10, 0.30)
    statuses = (
        lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings)
        .select("policy_version", "status")
        .distinct()
        .orderBy("policy_version")
        .collect()
    )
    assert [tuple(r) for r in statuses] == [(1, "superseded"), (2, "active")]
    with pytest.raises(ValueError, match="v1 is superseded, not a draft"):
        scoring.activate_draft(spark, settings, 1)
    rows = desk["store"].audit_rows(action="policy.")
    assert [(r["actor"], r["action"]) for r in reversed(rows)] == [
        ("abe", "policy.propose"),
        ("abe", "policy.refused"),
        ("alice", "policy.approved"),
        ("alice", "policy.activate"),
        ("mona", "policy.propose"),
        ("abe", "policy.approved"),
        ("abe", "policy.activate"),
        ("mona", "policy.propose"),
        ("alice", "policy.approved"),
        ("alice", "policy.activate"),
    ]


def test_a_backtested_policy_shows_its_guard_flags_and_takes_over(desk, browser, spark):
    """`riskctl policy backtest` wrote two backtests: one with segment overrides, which
    nothing can apply yet (refused with why), and one moving to model v2 with a wider
    cut-off, whose approval rate moves beyond the guard. The approver sees the flags;
    approving makes v2 the champion and its cut-off the active one."""
    from test_backtest import COST, EDGES, history

    from riskcontrol.apply import backtest_store, policylab
    from riskcontrol.apply.backtest import Policy, SegmentOverride, guard, replay
    from riskcontrol.modeling import tracking
    from riskcontrol.serve.engine import service_rules

    settings = desk["settings"]
    client, name = tracking.client(settings), settings.registered_model
    client.create_registered_model(name)
    for _ in range(2):  # versions without a model: this test loads none
        client.create_model_version(name, source=str(desk["home"] / "no-model"), run_id=None)
    client.set_registered_model_alias(name, "champion", "1")
    # as `riskctl policy backtest` replays them: both policies with the service's reject
    # rules (the desk's rules file is the example one), the proposals' files naming none
    service = policylab.reject_codes(service_rules(settings))
    active = Policy("cutoff 2", "champion", 0.10, 0.20, service)
    keep = (policylab.SERVICE_RULES,)
    proposals = {
        "bt-grow": Policy("grow-2", "2", 0.15, 0.30, keep),
        "bt-seg": Policy("seg-1", "champion", 0.1, 0.2, keep, (SegmentOverride("channel", "web",
                                                                              0.05, 0.1),)),
    }  # fmt: skip
    flags = {}
    for minute, (backtest_id, proposed) in enumerate(proposals.items()):
        proposed = policylab.with_service_rules(proposed, service)
        result = replay(history(), active, proposed, COST, band_edges=EDGES)
        flags[backtest_id] = guard(result, 0.05, 0.01)
        rows = backtest_store.records(
            result,
            flags[backtest_id],
            backtest_id=backtest_id,
            window="2025-01..2025-03",
            created_at=STAMP + dt.timedelta(minutes=minute),
        )
        backtest_store.write(spark, settings, rows)
    # the hand history of test_backtest: the active policy rejects 5, 7, 11 (PD >= 0.20),
    # 4 (KO_BLOCKLIST), 6 and 10 (KO_DISHONEST_DEBTOR); the proposed 7 (pd_proposed 0.40 >=
    # 0.30) and, by the same rules, 4, 6 and 10
    assert "KO_BLOCKLIST" in service and "KO_DISHONEST_DEBTOR" in service
    assert flags["bt-grow"][0].startswith("approval rate rises from 50.0% to 66.7%")

    login(browser, desk, "mona")
    browser.get(f"{desk['url']}/policies")
    listed = text(browser, "#backtests").split("\n")
    assert listed[1].startswith("seg-1 · champion · 0.100 / 0.200 2025-01..2025-03 50.0% → 50.0%")
    assert listed[2].startswith("grow-2 · 2 · 0.150 / 0.300 2025-01..2025-03 50.0% → 66.7%")
    assert listed[2].endswith(f"⚑ {len(flags['bt-grow'])}")
    # the newest, with overrides, is chosen by default: refused, saying why
    browser.find_element(By.ID, "backtest-rationale").send_keys("per-channel cut-offs")
    press(browser, "submit-backtest")
    assert "has segment overrides, which the decision service" in text(browser, "#refusal")
    browser.get(f"{desk['url']}/policies")
    browser.find_element(By.ID, "bt-bt-grow").click()
    browser.find_element(By.ID, "backtest-rationale").send_keys("the logistic model, wider")
    press(browser, "submit-backtest")
    assert "policy grow-2 (model 2): approve below PD 0.150, reject from 0.300" in text(browser)
    shown = text(browser, "#guard-flags")
    assert shown.startswith("Guard flags: check before approving")
    assert all(f in shown for f in flags["bt-grow"])
    figures = text(browser, "#backtest-figures").split("\n")
    # known outcomes of both: 1, 2, 3, 8, 9, bad 2
    assert figures[1].startswith("none (known outcomes) Active 6 50.0% 20.0%")
    assert figures[2].startswith("none (known outcomes) Proposed 8 66.7% 20.0%")
    assert len(figures) == 1 + 3 * 2  # three inference methods, two policies
    assert "reject inference: the rejected applications' outcomes inferred with the " in text(
        browser, "#backtest-notes"
    )
    shot(browser, "policy-backtest")
    pid = re.search(r"/policies/(\d+)$", browser.current_url).group(1)
    assert tracking.alias_version(settings, "champion") == "1"  # nothing before approval
    login(browser, desk, "alice")
    browser.get(f"{desk['url']}/policies/{pid}")
    assert text(browser, "#guard-flags").startswith("Guard flags")  # the approver sees them
    press(browser, "approve")
    assert text(browser, "#status") == "approved"
    done = re.search(r"active as gold.cutoff_policy v(\d+) on model v2, now the champion "
                     r"\(was v1\)", text(browser))  # fmt: skip
    assert done, text(browser)
    assert scoring.active_policy(spark, settings) == scoring.CutoffPolicy(done[1], 0.15, 0.30)
    assert tracking.alias_version(settings, "champion") == "2"
    row = (
        lakehouse.read(spark, GOLD_CUTOFF_POLICY, settings)
        .where(f"policy_version = {int(done[1])}")
        .first()
    )
    assert (row.model_name, row.model_version) == (name, "2")
    assert row.population.startswith("policy grow-2: backtest bt-grow on 2025-01..2025-03")


def test_a_role_without_the_right_gets_403(desk, browser):
    login(browser, desk, "vera")
    for path in ("/reviews", "/policies", "/audit", "/users", f"/reviews/{key('A2')}"):
        answer = httpx.get(f"{desk['url']}{path}", cookies={"rk_session": session_cookie(browser)})
        assert answer.status_code == 403, path
        assert "this needs the role" in html.unescape(answer.text)
    browser.get(f"{desk['url']}/audit")
    assert text(browser, "h1") == "Your role may not do this."
    login(browser, desk, "rita")
    token = csrf_of(browser)
    answer = httpx.post(
        f"{desk['url']}/policies",
        cookies={"rk_session": session_cookie(browser)},
        data={
            "csrf": token,
            "kind": "cutoff",
            "approve_below_pd": "0.5",
            "reject_from_pd": "0.9",
            "rationale": "x",
        },
    )
    assert answer.status_code == 403
    # without a session: to the login page
    answer = httpx.get(f"{desk['url']}/audit")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")


def test_posts_without_the_csrf_token_are_refused(desk, browser):
    login(browser, desk, "rita")
    cookie = {"rk_session": session_cookie(browser)}
    target = f"{desk['url']}/reviews/{key('A2')}/decide"
    form = {"decision": "reject", "reason": "forged"}
    for extra in ({}, {"csrf": "wrong"}):
        answer = httpx.post(target, cookies=cookie, data={**form, **extra})
        assert answer.status_code == 403 and "CSRF token" in html.unescape(answer.text)
    # the right token from another site's form: refused by origin
    answer = httpx.post(
        target,
        cookies=cookie,
        data={**form, "csrf": csrf_of(browser)},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert DecisionJournal(journal_path(desk["home"])).review_of(key("A2")) is None
    # a login form posted without its token
    answer = httpx.post(f"{desk['url']}/login", data={"username": "rita", "password": PW})
    assert answer.status_code == 403 and "rk_session" not in answer.headers.get("set-cookie", "")
    cookie_header = httpx.get(f"{desk['url']}/login").headers["set-cookie"]
    assert "HttpOnly" in cookie_header and "Secure" in cookie_header
    assert "SameSite=strict" in cookie_header


def test_the_audit_log_shows_who_did_what(desk, browser):
    login(browser, desk, "root")
    browser.get(f"{desk['url']}/audit?action=review.")
    rows = [r.text for r in browser.find_elements(By.CSS_SELECTOR, "#audit tr")][1:]
    assert [r.split()[2:8] for r in rows] == [
        ["mona", "review.assign", "decision", "#2", "rita", "127.0.0.1"],
        ["rita", "review.decide", "decision", "#1", '{"decision":', '"approve"}'],
        ["rita", "review.assign", "decision", "#1", "rita", "127.0.0.1"],
    ]
    browser.get(f"{desk['url']}/audit?actor=vera")
    actions = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#audit td.action")]
    assert actions.count("login.failed") == 5 and "user.locked" in actions
    assert actions.count("login.refused") == 1 and actions.count("login.ok") == 3
    shot(browser, "audit")
    browser.get(f"{desk['url']}/users")
    assert "vera viewer" in text(browser, "#users")


def test_reviews_land_in_gold_and_an_erasure_takes_them_everywhere(desk, browser, spark):
    from riskcontrol.core.catalog import GOLD_DECISION_LOG, GOLD_DECISION_REVIEWS
    from riskcontrol.privacy.erase import erase_customer
    from riskcontrol.serve import lander

    settings, home = desk["settings"], desk["home"]
    journal = DecisionJournal(journal_path(home))
    landing = lander.land(spark, settings, journal)
    assert (landing.landed, landing.reviews_landed, landing.review_rows) == (6, 1, 1)
    (row,) = lakehouse.read(spark, GOLD_DECISION_REVIEWS, settings).collect()
    assert (row.review_seq, row.application_key, row.customer_key, row.decision_seq) == (
        1,
        key("A1"),
        key("C1"),
        1,
    )
    assert (row.original_decision, row.decision, row.reviewer) == ("review", "approve", "rita")
    assert "reason" not in GOLD_DECISION_REVIEWS.columns  # free text stays in the journal
    again = lander.land(spark, settings, journal)
    assert (again.landed, again.reviews_landed, again.review_rows) == (0, 0, 1)
    # the customer of A1 (reviewed, and assigned to rita) asks to be erased
    stores = {"service.decision_journal": journal, "workbench.assignments": desk["store"]}
    result = erase_customer(spark, settings, "C1", "dpo", "art. 17 request", stores=stores)
    assert result.rows_deleted["service.decision_journal"] == 2  # the decision and its review
    assert result.rows_deleted["workbench.assignments"] == 1
    assert result.rows_deleted[GOLD_DECISION_REVIEWS.full_name] == 1
    assert result.rows_deleted[GOLD_DECISION_LOG.full_name] == 1
    assert lakehouse.read(spark, GOLD_DECISION_REVIEWS, settings).count() == 0
    assert key("A1") not in desk["store"].assignments()
    login(browser, desk, "rita")
    browser.get(f"{desk['url']}/reviews/{key('A1')}")
    assert "no such application" in text(browser, "#refusal")
