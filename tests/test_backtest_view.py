"""The backtest's charts and report section, on the hand-built history of test_backtest
(pure pandas and matplotlib Agg, no Spark). Every figure below is derived by hand from that
history; test_backtest derives the underlying metrics."""

from __future__ import annotations

import base64
import io

import pytest
from test_backtest import (
    ACTIVE,
    COST,
    EDGES,
    KO_BL,
    KO_DD,
    PROPOSED,
    history,
    proposed_pd_result,
)

from riskcontrol.apply.backtest import Policy, guard, replay
from riskcontrol.apply.backtest_view import (
    backtest_section,
    plot_data_uris,
    plot_segments,
    plot_swaps,
    verdict,
)

# Rejects what the active policy rejects, and more: PD >= 0.10 and both rules reject,
# [0.05, 0.10) reviews. It lends 1 (0.05), 8 (0.08), 12 (0.06), all reviewed, and rejects
# 2 (0.12), 3 (0.18), 4 (KO_BLOCKLIST), 9 (0.12) besides the active rejects 5, 6 (KO_DD),
# 7, 10 (KO_DD), 11 (0.20): nothing swaps in; 2, 3, 4, 9 swap out.
STRICT = Policy("v3", "gbt v1", 0.05, 0.10, (KO_DD, KO_BL))
SHUT = Policy("v9", "m", 0.0, 0.0)  # rejects everything


@pytest.fixture(scope="module")
def result():
    return replay(history(), ACTIVE, PROPOSED, COST, band_edges=EDGES, reject_factor=1.5)


@pytest.fixture(scope="module")
def strict():
    return replay(history(), ACTIVE, STRICT, COST, band_edges=EDGES, reject_factor=1.5)


def row(*cells: str, text: int = 2) -> str:
    """A table row as the report writes it: the first ``text`` cells left-aligned, the
    rest numeric."""
    tds = (f"<td>{c}</td>" if i < text else f'<td class="n">{c}</td>' for i, c in enumerate(cells))
    return "<tr>" + "".join(tds) + "</tr>"


def part(html: str, heading: str) -> str:
    """The section's text from ``<h3>heading</h3>`` to the next heading."""
    parts = [p for p in html.split("<h3>") if p.startswith(f"{heading}</h3>")]
    assert len(parts) == 1, heading
    return parts[0]


def texts(ax, gid: str) -> list[str]:
    return [t.get_text() for t in ax.texts if t.get_gid() == gid]


def draws(fig) -> bool:
    fig.savefig(io.BytesIO(), format="png")
    return True


# -------------------------------------------------------------------------- section


def test_the_verdict_under_fuzzy_inference(result):
    # approvals 7 -> 8; approval rate 7/12 -> 8/12; on pd_active's fuzzy weights bad rate
    # 1/3 -> 221/469 = 47.12%, a shift of 194/1407 = 13.79 points; profit -930 ->
    # -20 + (1700 - 25000)/67 - 10 + (2300 - 22000)/67 + (1400 - 60000)/67 - 10
    # = -40 - 101600/67 = -1556.42, a change of -626.42
    assert verdict(result) == (
        "Under fuzzy reject inference, proposed v2 against active v1: approvals 7 → 8 (+1), "
        "approval rate 58.33% → 66.67%; bad rate of approvals 33.33% → 47.12% (+13.79 points); "
        "profit -930 → -1,556 (-626)."
    )
    html = backtest_section(result)
    assert html.startswith(
        '<section id="backtest"><h2>Policy backtest: active v1 (logistic v3) vs proposed v2 '
        f"(gbt v1)</h2><p><b>{verdict(result)}</b></p>"
    )
    assert html.endswith("</section>")


def test_per_policy_tables_for_each_method(result):
    html = backtest_section(result)
    active = row("active v1", "logistic v3", "12", "7", "3", "5", "58.33%", "33.33%", "1,500",
                 "-930", "6", "0")  # fmt: skip
    known = part(html, "Known outcomes only")
    # proposed, known outcomes 1, 2, 3, 8 (bad 2): 1/4; loss 0.5 x 1000;
    # profit 100 - 500 + 190 + 190
    assert active + row("proposed v2", "gbt v1", "12", "8", "4", "4", "66.67%", "25.00%", "500",
                        "-20", "4", "0") in known  # fmt: skip
    # parcelling on pd_active's bands: 5, 6, 11 inferred at 1/3 x 1.5 = 0.5 each: bads
    # 2.5 over 7 = 35.71%; loss 500 + 0.5 x 2000; profit -20 - 210 - 200 - 410
    parcels = part(html, "Parcelling")
    assert active + row("proposed v2", "gbt v1", "12", "8", "4", "4", "66.67%", "35.71%", "1,500",
                        "-840", "4", "3") in parcels  # fmt: skip
    # five rejected rows to infer (5, 6, 7, 10, 11); 5, 6, 7, 11 in the band [0.2, 1] of
    # pd_active, which has no known outcome
    assert (
        "<p>Parcelling: 5 rejected application(s) without an outcome take the known bad rate "
        "of their band of the active model&#x27;s PD (logistic v3) x 1.5; 4 in a band without "
        "known outcomes take the overall rate; 0 capped at 100%.</p>"
    ) in parcels
    # fuzzy: 221/469 = 47.12%; loss 500 + 107000/67 = 2097.0; profit -40 - 101600/67
    # = -1556.4
    fuzzy = part(html, "Fuzzy augmentation")
    assert active + row("proposed v2", "gbt v1", "12", "8", "4", "4", "66.67%", "47.12%", "2,097",
                        "-1,556", "4", "3") in fuzzy  # fmt: skip
    # factor 200/67 = 2.985; row 7 (0.35 x 200/67) capped
    assert (
        "count as bad with weight the active model&#x27;s PD (logistic v3) x 2.985 (the "
        "calibration factor); 1 capped at 1."
    ) in fuzzy
    # the immature row 12, as replay notes it
    assert (
        '<p class="meta">1 historically approved row(s) have no outcome yet (immature): '
        "counted in the decisions, left out of every rate, loss and profit</p>"
    ) in html
    # and whose PD inferred the outcomes
    assert (
        '<p class="meta">reject inference: the rejected applications&#x27; outcomes inferred '
        "with the active model&#x27;s PD (pd_active, logistic v3), not with the proposed model "
        "under test</p>"
    ) in html


def test_inference_on_the_proposed_pd_renders_the_old_figures():
    result = proposed_pd_result()
    # bad rate 1/3 -> 179/455, a shift of 82/1365 = 6.007 points; profit -930 ->
    # -20 + (300 - 5000)/13 - 10 + (4100 - 12000)/65 + (1000 - 8000)/13 - 10 = -1061.54,
    # a change of -131.54
    assert verdict(result) == (
        "Under fuzzy reject inference, proposed v2 against active v1: approvals 7 → 8 (+1), "
        "approval rate 58.33% → 66.67%; bad rate of approvals 33.33% → 39.34% (+6.01 points); "
        "profit -930 → -1,062 (-132)."
    )
    html = backtest_section(result)
    # parcelling: 5 (0.5), 6 (0.75), 11 (0.5) inferred: bads 2.75 over 7 = 39.29%;
    # loss 500 + 0.5 x 2250; profit -20 - 210 - 350 - 410
    parcels = part(html, "Parcelling")
    assert row("proposed v2", "gbt v1", "12", "8", "4", "4", "66.67%", "39.29%", "1,625",
               "-990", "4", "3") in parcels  # fmt: skip
    # 5, 7, 11 in the empty band [0.2, 1] of pd_proposed
    assert (
        "<p>Parcelling: 5 rejected application(s) without an outcome take the known bad rate "
        "of their band of the proposed model&#x27;s PD (gbt v1) x 1.5; 3 in a band without "
        "known outcomes take the overall rate; 0 capped at 100%.</p>"
    ) in parcels
    # fuzzy: 179/455 = 39.34%; loss 500 + 77000/65 = 1684.6; profit -1061.5
    fuzzy = part(html, "Fuzzy augmentation")
    assert row("proposed v2", "gbt v1", "12", "8", "4", "4", "66.67%", "39.34%", "1,685",
               "-1,062", "4", "3") in fuzzy  # fmt: skip
    # factor 40/13 = 3.077; row 7 (0.40 x 40/13) capped
    assert (
        "count as bad with weight the proposed model&#x27;s PD (gbt v1) x 3.077 (the "
        "calibration factor); 1 capped at 1."
    ) in fuzzy
    # swap-in 5, 6, 11: parcelling 1.75/3; fuzzy (10/13 + 24/65 + 8/13)/3 = 114/195 = 58.46%;
    # profit under v2 (fuzzy) -4700/13 - 10 - 7900/65 - 7000/13 - 10 = -1041.5. The range
    # takes the other model's, here the active's, figures: parcelling 1.5/3 = 50.00%, fuzzy
    # 154/201 = 76.62% (test_swap_sets_and_rule_driven_swaps)
    assert row("swap-in", "rejected by active v1, lent by proposed v2", "3", "4,000", "0", "n/a",
               "58.33% (50.00%–58.33% by model)", "58.46% (58.46%–76.62% by model)",
               "-1,042") in part(html, "Swap-in and swap-out")  # fmt: skip
    assert (
        '<p class="meta">reject inference: the rejected applications&#x27; outcomes inferred '
        "with the proposed model&#x27;s PD (pd_proposed, gbt v1): the model under test infers "
        "the outcomes it is judged on</p>"
    ) in html


def test_swap_sets_and_rule_driven_swaps(result):
    html = backtest_section(result)
    swaps = part(html, "Swap-in and swap-out")
    # swap-in 5, 6, 11: 4000, no known outcome; parcelling 1.5/3; fuzzy
    # (50/67 + 44/67 + 60/67)/3 = 154/201 = 76.62%; profit under v2 (fuzzy)
    # -23300/67 - 10 - 19700/67 - 58600/67 - 10 = -1536.4. With the proposed model's PD
    # (test_backtest's test_inference_on_the_proposed_pd_on_request) parcelling infers
    # 1.75/3 = 58.33% and fuzzy 114/195 = 58.46%: each method's range is its two figures
    assert row("swap-in", "rejected by active v1, lent by proposed v2", "3", "4,000", "0", "n/a",
               "50.00% (50.00%–58.33% by model)", "76.62% (58.46%–76.62% by model)",
               "-1,536") in swaps  # fmt: skip
    # swap-out 4 (bad), 9 (good): 3000, known; under v1 4 earns -1010, 9 +90; nothing
    # inferred, so no range
    assert row("swap-out", "lent by active v1, rejected by proposed v2", "2", "3,000", "2",
               "50.00%", "50.00%", "50.00%", "-920") in swaps  # fmt: skip
    assert "the truth can lie outside it.</p>" in swaps
    assert "no swap-ins" not in html and "no swap-outs" not in html
    rules = part(html, "Rule-driven swaps")
    # row 6, one of the 3 swap-ins, by the active KO_DISHONEST_DEBTOR; row 4, one of the 2
    # swap-outs, by the proposed KO_BLOCKLIST
    assert (
        row("swap-in", "active v1 rejects", KO_DD, "1", "33.33%", "1,000", text=3)
        + row("swap-out", "proposed v2 rejects", KO_BL, "1", "50.00%", "2,000", text=3)
    ) in rules


def test_guard_flags_stand_out_escaped(result):
    # fuzzy bad rate 1/3 -> 221/469 (test_backtest's guard test)
    flags = guard(result, max_approval_shift=0.05, max_bad_rate_shift=0.05)
    html = backtest_section(result, flags)
    assert (
        '<div class="guard"><p><span class="sev sev-critical">guard</span> <b>2 flag(s): check '
        "before approving</b></p><ul><li><b>approval rate rises from 58.3% to 66.7% (active v1 "
        "-&gt; proposed v2): +8.3 points, more than the 5.0 allowed</b></li><li><b>bad rate of "
        "approvals (fuzzy reject inference) rises from 33.3% to 47.1% (active v1 -&gt; proposed "
        "v2): +13.8 points, more than the 5.0 allowed</b></li></ul></div>"
    ) in html
    # right after the verdict
    assert html.index("</b></p>") < html.index('<div class="guard">') < html.index("<h3>")
    odd = backtest_section(result, ['shift <5 & "more"'])
    assert "<li><b>shift &lt;5 &amp; &quot;more&quot;</b></li>" in odd
    assert "1 flag(s)" in odd
    # no flag raised, and the guard not run
    clean = backtest_section(result, [])
    assert "<p>Guard: no flag, the shifts are within the allowed.</p>" in clean
    assert "guard" not in backtest_section(result, None).lower()


def test_html_in_policy_and_rule_values_is_escaped():
    frame = history()
    frame["rules_fired"] = frame["rules_fired"].map(
        lambda fired: (
            [("KO_A&B<i>" if c == KO_DD else c) for c in fired]
            if isinstance(fired, list | tuple)
            else fired
        )
    )
    active = Policy('v1"><b>', "logistic v3", 0.10, 0.20, ("KO_A&B<i>",))
    proposed = Policy("v2", "<script>alert(1)</script>", 0.15, 0.30, (KO_BL,))
    result = replay(frame, active, proposed, COST, band_edges=EDGES)
    html = backtest_section(
        result,
        ["<img src=x onerror=alert(1)>"],
        {'swaps "chart" <1>': 'charts/a".png?x=<y>'},
    )
    assert "<script>" not in html and "<img src=x" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<li><b>&lt;img src=x onerror=alert(1)&gt;</b></li>" in html
    # the rule that let row 6 swap in, under the active policy's escaped version
    assert (
        row("swap-in", "active v1&quot;&gt;&lt;b&gt; rejects", "KO_A&amp;B&lt;i&gt;", "1",
            "33.33%", "1,000", text=3)
    ) in part(html, "Rule-driven swaps")  # fmt: skip
    assert (
        '<img class="chart" alt="swaps &quot;chart&quot; &lt;1&gt;" '
        'src="charts/a&quot;.png?x=&lt;y&gt;">'
    ) in html
    # the proposed model's name where its PD inferred the outcomes
    inferred = backtest_section(
        replay(frame, active, proposed, COST, band_edges=EDGES, inference_pd="pd_proposed")
    )
    assert "<script>" not in inferred
    assert (
        "count as bad with weight the proposed model&#x27;s PD (&lt;script&gt;alert(1)&lt;/"
        "script&gt;) x "
    ) in part(inferred, "Fuzzy augmentation")


def test_no_swap_in_renders_and_says_so(strict):
    html = backtest_section(strict, plots=["a.png", "b.png"])
    swaps = part(html, "Swap-in and swap-out")
    assert row("swap-in", "rejected by active v1, lent by proposed v3", "0", "0", "0", "n/a",
               "n/a", "n/a", "n/a") in swaps  # fmt: skip
    assert (
        '<p class="empty">no swap-ins: no application is rejected by active v1, lent by '
        "proposed v3</p>"
    ) in swaps
    # swap-out 2 (bad), 3, 4 (bad), 9: 1000 + 2000 + 2000 + 1000; under v1 2 earns -500,
    # 3 +190, 4 -1010, 9 +90
    assert row("swap-out", "lent by active v1, rejected by proposed v3", "4", "6,000", "4",
               "50.00%", "50.00%", "50.00%", "-1,230") in swaps  # fmt: skip
    assert "no swap-outs" not in html
    # row 4, one of the 4 swap-outs, by KO_BLOCKLIST (10 is rejected by both policies: no swap)
    assert row("swap-out", "proposed v3 rejects", KO_BL, "1", "25.00%", "2,000", text=3) in html
    # v3 lends 1 (+100 - 10), 8 (+200 - 10), 12 (immature): no bad among 2 outcomes
    assert verdict(strict) == (
        "Under fuzzy reject inference, proposed v3 against active v1: approvals 7 → 3 (-4), "
        "approval rate 58.33% → 25.00%; bad rate of approvals 33.33% → 0.00% (-33.33 points); "
        "profit -930 → 280 (+1,210)."
    )
    assert (
        '<h3>Charts</h3><img class="chart" alt="policy backtest chart 1" src="a.png">'
        '<img class="chart" alt="policy backtest chart 2" src="b.png"></section>'
    ) in html
    with pytest.raises(ValueError, match="plots must be a list of paths or data URIs"):
        backtest_section(strict, plots="a.png")


def test_a_policy_that_lends_nothing_renders():
    result = replay(history(), ACTIVE, SHUT, COST, band_edges=EDGES)
    html = backtest_section(result, guard(result, 0.5, 0.5))
    assert (
        "approvals 7 → 0 (-7), approval rate 58.33% → 0.00%; bad rate of approvals 33.33% → "
        "n/a (n/a); profit -930 → 0 (+930)."
    ) in html
    assert '<p class="empty">no swap-ins: no application is rejected by active v1' in html
    assert "cannot be compared (active v1 -&gt; proposed v9)" in html
    assert "<h3>Charts</h3>" not in html
    assert draws(plot_swaps(result))


def test_no_rule_driven_swap_says_so():
    result = replay(history().drop(columns="rules_fired"), ACTIVE, PROPOSED, COST)
    rules = part(backtest_section(result), "Rule-driven swaps")
    assert rules == (
        'Rule-driven swaps</h3><p class="empty">no swap is driven by a policy rule: the PD '
        "thresholds make every swap</p></section>"
    )


# ---------------------------------------------------------------------------- charts


def test_swap_chart_annotates_the_matrix_and_compares_the_methods(result):
    fig = plot_swaps(result)
    assert fig.get_suptitle() == "Policy backtest: active v1 (logistic v3) vs proposed v2 (gbt v1)"
    matrix, rates = fig.axes[:2]
    # approve->approve 1, 2, 12; approve->review 8; review->review 3; review->reject 4, 9;
    # reject->approve 6; reject->review 5, 11; reject->reject 7, 10 (row-major)
    assert texts(matrix, "count") == ["3", "1", "0", "0", "1", "2", "1", "2", "2"]
    assert matrix.get_images()[0].get_array().tolist() == [[3, 1, 0], [0, 1, 2], [1, 2, 2]]
    # each cell's own outcomes under fuzzy (weights of pd_active x 200/67): 1, 2 (bad) and
    # immature 12: 1/2; 8: 0; 3: 0; 4 (bad), 9: 1/2; 6: 44/67; 5, 11: (50/67 + 60/67) / 2
    # = 55/67; 7 (capped at 1), 10 (6/67): 73/134
    assert texts(matrix, "bad_rate") == [
        "bad 50.0%", "bad 0.0%", "bad n/a",
        "bad n/a", "bad 0.0%", "bad 50.0%",
        "bad 65.7%", "bad 82.1%", "bad 54.5%",
    ]  # fmt: skip
    assert [t.get_text() for t in matrix.get_xticklabels()] == ["approve", "review", "reject"]
    assert [t.get_text() for t in matrix.get_yticklabels()] == ["approve", "review", "reject"]
    assert (matrix.get_xlabel(), matrix.get_ylabel()) == (
        "proposed v2 decision",
        "active v1 decision",
    )
    # the swap-in cells (reject row, approve and review columns) and swap-out cells
    boxes = {p.get_label(): (p.get_xy(), p.get_width(), p.get_height()) for p in matrix.patches}
    assert boxes == {"swap-in": ((-0.5, 1.5), 2, 1), "swap-out": ((1.5, -0.5), 1, 2)}

    # approval rate, then the bad rate known only, parcelling, fuzzy; active vs proposed
    active, proposed = rates.containers
    assert (active.get_label(), proposed.get_label()) == ("active v1", "proposed v2")
    heights = [[bar.get_height() for bar in c] for c in (active, proposed)]
    assert heights[0] == pytest.approx([7 / 12, 1 / 3, 1 / 3, 1 / 3])
    assert heights[1] == pytest.approx([8 / 12, 1 / 4, 2.5 / 7, 221 / 469])
    assert [t.get_text() for t in rates.texts] == [
        "58.3%", "33.3%", "33.3%", "33.3%", "66.7%", "25.0%", "35.7%", "47.1%",
    ]  # fmt: skip
    assert [t.get_text() for t in rates.get_xticklabels()] == [
        "approval rate\n(any method)",
        "bad rate\nknown outcomes only",
        "bad rate\nparcelling",
        "bad rate\nfuzzy augmentation",
    ]
    assert draws(fig)


def test_swap_chart_cells_follow_the_method(result):
    matrix = plot_swaps(result, method="none").axes[0]
    assert texts(matrix, "count") == ["3", "1", "0", "0", "1", "2", "1", "2", "2"]
    # known outcomes only: the rejected rows have none
    assert texts(matrix, "bad_rate")[6:] == ["bad n/a"] * 3
    assert "known outcomes only" in matrix.get_title()
    with pytest.raises(ValueError, match="method must be one of none, parcelling, fuzzy"):
        plot_swaps(result, method="augmentation")


def test_swap_chart_with_nothing_swapping_in(strict):
    matrix = plot_swaps(strict).axes[0]
    # approve 1 -> review, 2 -> reject, 8 -> review, 12 -> review; review 3, 4, 9 -> reject;
    # the five active rejects stay rejected
    assert texts(matrix, "count") == ["0", "3", "1", "0", "0", "3", "0", "0", "5"]


def test_segment_bars_sorted_by_the_proposed_policy(result):
    fig = plot_segments(result, "channel")
    ax = fig.axes[0]
    # proposed approval rate: web 3/4, app 4/6, broker 1/2 (the broker override); active:
    # web 0/4, app 5/6, broker 2/2
    assert [t.get_text() for t in ax.get_yticklabels()] == ["web", "app", "broker"]
    assert ax.yaxis_inverted()
    active, proposed = ax.containers
    assert [b.get_width() for b in active] == pytest.approx([0.0, 5 / 6, 1.0])
    assert [b.get_width() for b in proposed] == pytest.approx([0.75, 4 / 6, 0.5])
    assert [t.get_text() for t in ax.texts] == [
        "0.0%",
        "83.3%",
        "100.0%",
        "75.0%",
        "66.7%",
        "50.0%",
    ]
    assert ax.get_title() == "Approval rate by channel: active v1 vs proposed v2"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["active v1", "proposed v2"]
    assert draws(fig)


def test_segment_bars_of_money_and_of_a_rate_with_gaps(result):
    # profit on known outcomes (test_backtest): proposed broker 190, web 0, app -210;
    # active broker 290, web 0, app -1220
    ax = plot_segments(result, "channel", metric="profit", method="none").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["broker", "web", "app"]
    assert [t.get_text() for t in ax.texts] == ["290", "0", "-1,220", "190", "0", "-210"]
    # bad rate on known outcomes: proposed app 1/3, broker 0, web none (last)
    ax = plot_segments(result, "channel", metric="bad_rate", method="none").axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["app", "broker", "web"]
    assert [t.get_text() for t in ax.texts] == ["50.0%", "0.0%", "n/a", "33.3%", "0.0%", "n/a"]
    with pytest.raises(ValueError, match="no segment type 'region'; it has channel, province"):
        plot_segments(result, "region")
    with pytest.raises(ValueError, match="metric must be one of applications"):
        plot_segments(result, "channel", metric="gini")


def test_hostile_names_are_drawn_as_text():
    frame = history()
    frame["channel"] = frame["channel"].replace({"web": "<script>alert(1)</script>"})
    frame["product"] = frame["product"].replace({"bnpl": "fee $x^$ & co"})
    proposed = Policy("v$2^$", "gbt v1", 0.15, 0.30, (KO_BL,))
    result = replay(frame, ACTIVE, proposed, COST, band_edges=EDGES)
    fig = plot_segments(result, "channel")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    # without the broker override: broker 2/2, web 3/4, app 4/6
    assert labels == ["broker", "<script>alert(1)</script>", "app"]
    assert draws(fig)
    # an unbalanced "$" would fail the drawing as TeX math
    assert draws(plot_segments(result, "product"))
    assert draws(plot_swaps(result))


def test_plot_data_uris_are_png(result):
    uris = plot_data_uris(result, ["channel"])
    assert list(uris) == [
        "swap matrix, approval and bad rates by reject inference",
        "approval rate by channel",
    ]
    for uri in uris.values():
        prefix = "data:image/png;base64,"
        assert uri.startswith(prefix)
        assert base64.b64decode(uri[len(prefix) :])[:8] == b"\x89PNG\r\n\x1a\n"
    html = backtest_section(result, plots=uris)
    assert html.count('<img class="chart" alt="') == 2
