"""The workbench's page templates (Jinja2, autoescaped: every value is escaped unless a
chart the server drew is marked safe)."""

from __future__ import annotations

from jinja2 import DictLoader, Environment, select_autoescape

CSS = """
body{font-family:"Noto Sans","WenQuanYi Zen Hei",sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f3a5f;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center}
header a{color:#fff;text-decoration:none}header .me{margin-left:auto}
header form{display:inline}header button{background:none;border:1px solid #fff;color:#fff}
main{padding:1em 1.5em;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1em;background:#fff}
td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#e8ecf2}.num{text-align:right}
.card{background:#fff;border:1px solid #ccd;padding:.6em 1em;margin:.5em 0 1em}
.flash{background:#e8f5e9;border:1px solid #2e7d32;padding:.5em}
.err{background:#ffebee;border:1px solid #c62828;padding:.5em}
.critical{color:#c62828;font-weight:bold}.warning{color:#b26a00;font-weight:bold}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:.6em}
.kpi{background:#fff;border:1px solid #ccd;padding:.5em}.kpi b{font-size:1.4em;display:block}
textarea{width:100%;font-family:monospace}
"""

BASE = """<!doctype html>
<html lang="{{ 'zh-CN' if lang == 'zh' else 'en' }}"><head><meta charset="utf-8">
<title>{{ title }} · {{ t('app') }}</title><style>{{ css|safe }}</style></head><body>
<header><b>{{ t('app') }}</b>
{% if me %}
<a href="{{ url('/') }}">{{ t('dashboard') }}</a>
{% if me.has('analyst') %}<a href="{{ url('/reviews') }}">{{ t('reviews') }}</a>{% endif %}
<a href="{{ url('/alerts') }}">{{ t('alerts') }}</a>
{% if me.has('risk_manager') %}<a href="{{ url('/policies') }}">{{ t('policies') }}</a>
<a href="{{ url('/audit') }}">{{ t('audit') }}</a>{% endif %}
{% if me.has('admin') %}<a href="{{ url('/users') }}">{{ t('users') }}</a>{% endif %}
<span class="me" id="me">{{ me.username }} ({{ t(me.role) }})</span>
<form method="post" action="{{ url('/logout') }}"><input type="hidden" name="csrf"
 value="{{ csrf }}"><button id="logout">{{ t('logout') }}</button></form>
{% endif %}
<a href="?lang={{ 'en' if lang == 'zh' else 'zh' }}">{{ 'English' if lang == 'zh' else '中文' }}</a>
</header><main>
{% if flash %}<p class="flash" id="flash">{{ flash }}</p>{% endif %}
{% if error %}<p class="err" id="error">{{ error }}</p>{% endif %}
{% block body %}{% endblock %}
</main></body></html>"""

LOGIN = """{% extends "base.html" %}{% block body %}
<h1>{{ t('login') }}</h1>
<form method="post" action="{{ url('/login') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>{{ t('username') }}<br><input name="username" id="username" autocomplete="username"
 required></label></p>
<p><label>{{ t('password') }}<br><input name="password" id="password" type="password"
 autocomplete="current-password" required></label></p>
<p><button id="submit">{{ t('login') }}</button></p></form>
{% endblock %}"""

DASHBOARD = """{% extends "base.html" %}{% block body %}
<h1>{{ t('dashboard') }}</h1>
<p id="as-of">{{ t('figures_as_of') }} {{ f.as_of }}</p>
{% for label, b in (('today', f.today), ('last30', f.month)) %}
<h2>{{ t(label) }}</h2>
<div class="grid" id="kpi-{{ label }}">
<div class="kpi">{{ t('volume') }}<b class="volume">{{ b.n }}</b></div>
<div class="kpi">{{ t('approval_rate') }}<b>{{ pct(b.approval_rate) }}</b></div>
<div class="kpi">{{ t('review_rate') }}<b>{{ pct(b.review_rate) }}</b></div>
<div class="kpi">{{ t('reject_rate') }}<b>{{ pct(b.reject_rate) }}</b></div>
<div class="kpi">{{ t('latency') }}<b>{{ num(b.latency_p50) }} / {{ num(b.latency_p95) }}</b></div>
</div>
{% endfor %}
<h2>{{ t('per_day') }}</h2>{{ charts.per_day|safe }}
<h2>{{ t('pd_distribution') }}</h2>{{ charts.pd|safe }}
<h2>{{ t('rule_hits') }} ({{ t('last30') }})</h2>
{% if f.month.rule_hits %}<table id="rule-hits"><tr><th>{{ t('rule') }}</th><th>{{ t('hits') }}</th>
<th>{{ t('rate') }}</th></tr>
{% for code, n, r in f.month.rule_hits %}<tr><td>{{ code }}</td><td class="num">{{ n }}</td>
<td class="num">{{ pct(r) }}</td></tr>{% endfor %}</table>
{% else %}<p>{{ t('no_data') }}</p>{% endif %}
<h2>{{ t('champion_challenger') }}</h2>
<table><tr><th>{{ t('arm') }}</th><th>{{ t('volume') }}</th><th>{{ t('approval_rate') }}</th>
<th>{{ t('mean_pd') }}</th></tr>
{% for arm, a in f.month.arms.items() %}<tr><td>{{ arm }}</td><td class="num">{{ a.n }}</td>
<td class="num">{{ pct(a.approval_rate) }}</td><td class="num">{{ num(a.mean_pd, 4) }}</td></tr>
{% endfor %}
{% if f.month.challenger_scored %}<tr><td colspan="4">challenger scored {{
 f.month.challenger_scored }}: mean PD champion {{ num(f.month.champion_mean_pd, 4) }},
 challenger {{ num(f.month.challenger_mean_pd, 4) }}</td></tr>{% endif %}</table>
<h2>{{ t('reviewed') }}</h2>
<p id="reviewed">{{ t('approve') }}: <b>{{ f.reviews.approve }}</b> · {{ t('reject') }}:
<b>{{ f.reviews.reject }}</b></p>
<h2>{{ t('open_alerts') }}</h2>
{% if lake_error %}<p class="err">{{ t('lake_unavailable') }}</p>{% endif %}
<table id="alert-matrix"><tr><th>{{ t('severity') }}</th>{% for q in 'ABCD' %}<th>{{ q }}</th>
{% endfor %}</tr>{% for s in ('critical', 'warning') %}<tr><th class="{{ s }}">{{ t(s) }}</th>
{% for q in 'ABCD' %}<td class="num">{{ matrix.get((s, q), 0) }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>{{ t('indicators') }}</h2>
{% if indicators %}<table id="indicators"><tr><th>{{ t('indicator') }}</th><th>{{ t('segment') }}
</th><th>{{ t('value') }}</th><th>{{ t('warning') }}</th><th>{{ t('critical') }}</th>
<th>{{ t('status') }}</th><th>{{ t('threshold_source') }}</th></tr>
{% for r in indicators %}<tr><td>{{ r.indicator }}</td><td>{{ r.segment_type }}={{ r.segment }}
</td><td class="num">{{ num(r.value, 4) }}</td><td class="num">{{ num(r.warning_threshold, 4) }}
</td><td class="num">{{ num(r.critical_threshold, 4) }}</td><td class="{{ r.status }}">{{
 r.status }}</td><td class="source">{{ r.threshold_source or '' }}</td></tr>{% endfor %}</table>
{% else %}<p>{{ t('no_data') }}</p>{% endif %}
<h2>{{ t('expected_loss') }}</h2>
{% if el %}<p id="el">{{ money(el.el) }} ({{ t('loans') }} {{ el.loans }}, {{ el.as_of_date }})
</p>{% else %}<p>{{ t('no_data') }}</p>{% endif %}
{% endblock %}"""

REVIEWS = """{% extends "base.html" %}{% block body %}
<h1>{{ t('reviews') }}</h1>
{% if not queue %}<p id="empty">{{ t('queue_empty') }}</p>{% else %}
<table id="queue"><tr><th>#</th><th>{{ t('decided_at') }}</th><th>{{ t('product') }}</th>
<th>PD</th><th>{{ t('rules_fired') }}</th><th>{{ t('assigned') }}</th><th></th></tr>
{% for e in queue %}<tr class="item" data-key="{{ e.key }}"><td>{{ e.seq }}</td>
<td>{{ e.record.decided_at[:19] }}</td><td>{{ e.record.product }}</td>
<td class="num">{{ num(e.record.pd, 4) }}</td><td>{{ e.record.rules_fired|join(', ') }}</td>
<td class="assignee">{{ assigned.get(e.key, '') }}</td>
<td><a class="open" href="{{ url('/reviews/' ~ e.key) }}">{{ t('open') }}</a></td></tr>
{% endfor %}</table>{% endif %}
{% endblock %}"""

REVIEW = """{% extends "base.html" %}{% block body %}
<h1>{{ t('application') }} #{{ e.seq }}</h1>
<div class="card"><p>{{ t('decided_at') }}: {{ r.decided_at }} · {{ t('product') }}:
{{ r.product }} · PD <b id="pd">{{ num(r.pd, 4) }}</b> · {{ r.risk_band }} · {{ t('quadrant') }}
{{ r.quadrant }} · {{ t('arm') }} {{ r.arm }} · {{ t('decision') }} <b>{{ r.decision }}</b></p>
<p>{{ t('assigned') }}: <span id="assignee">{{ assignee or '-' }}</span></p></div>
<h2>{{ t('reasons') }}</h2><ul id="reasons">{% for x in r.reasons %}
<li><b>{{ x.code }}</b> ({{ x.source }}): {{ x.zh if lang == 'zh' else x.en }}</li>{% endfor %}
</ul>
<h2>{{ t('rules_fired') }}</h2><p id="rules">{{ r.rules_fired|join(', ') or '-' }}</p>
<h2>{{ t('features') }}</h2><table id="features">{% for k, v in r.features.items() %}
<tr><th>{{ k }}</th><td>{{ v if v is not none else '' }}</td></tr>{% endfor %}</table>
<h2>{{ t('records') }}</h2>
{% if records_error %}<p class="err">{{ t('lake_unavailable') }}</p>
{% elif records %}<table id="records">{% for x in records %}<tr><td>{{ x.kind }}</td>
<td>{{ x.date }}</td><td class="summary">{{ x.summary }}</td><td>{{ x.match }}
{{ num(x.confidence, 2) }}</td></tr>{% endfor %}</table>
{% else %}<p>{{ t('no_data') }}</p>{% endif %}
{% if done %}<p class="flash" id="reviewed-as">{{ t('reviewed_as') }}: <b>{{ done.record.decision
 }}</b> {{ t('by') }} {{ done.record.reviewer }} · <span class="reason">{{ done.record.reason
 }}</span></p>
{% elif me.has('reviewer') %}
<form method="post" action="{{ url('/reviews/' ~ e.key ~ '/assign') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<button id="assign">{{ t('assign_me') }}</button>
</form>
{% if me.has('risk_manager') %}
<form method="post" action="{{ url('/reviews/' ~ e.key ~ '/assign') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<select name="assignee" id="assignee-select">{% for u in reviewers %}<option>{{ u }}</option>
{% endfor %}</select> <button id="assign-other">{{ t('assign') }}</button></form>
{% endif %}
<form method="post" action="{{ url('/reviews/' ~ e.key ~ '/decide') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<p><label><input type="radio" name="decision" value="approve" id="d-approve" required>
{{ t('approve') }}</label> <label><input type="radio" name="decision" value="reject"
 id="d-reject"> {{ t('reject') }}</label></p>
<p><label>{{ t('reason') }}<br><textarea name="reason" id="reason" rows="3" required></textarea>
</label></p><p><button id="decide">{{ t('decide') }}</button></p></form>
{% endif %}
{% endblock %}"""

ALERTS = """{% extends "base.html" %}{% block body %}
<h1>{{ t('alerts') }}</h1>
<p><a href="?all=1">all</a> · <a href="?">open</a></p>
{% if lake_error %}<p class="err">{{ t('lake_unavailable') }}</p>{% endif %}
{% if not alerts %}<p>{{ t('no_data') }}</p>{% else %}
<table id="alerts"><tr><th>id</th><th>{{ t('severity') }}</th><th>{{ t('quadrant') }}</th>
<th>{{ t('indicator') }}</th><th>{{ t('segment') }}</th><th>{{ t('stage') }}</th>
<th>{{ t('first_breach') }}</th></tr>
{% for a in alerts %}<tr><td><a href="{{ url('/alerts/' ~ a.alert_id) }}">{{ a.alert_id }}</a>
</td><td class="{{ a.severity }}">{{ a.severity }}</td><td>{{ a.quadrant }}</td>
<td>{{ a.indicator }}</td><td>{{ a.segment_type }}={{ a.segment }}</td><td>{{ a.stage }}</td>
<td>{{ a.first_breach_date }}</td></tr>{% endfor %}</table>{% endif %}
{% endblock %}"""

ALERT = """{% extends "base.html" %}{% block body %}
<h1>{{ t('alerts') }} {{ a.alert_id }}</h1>
<div class="card"><p class="{{ a.severity }}">{{ headline }}</p>
<p>{{ t('stage') }}: <b id="stage">{{ a.stage }}</b> · {{ t('quadrant') }} {{ a.quadrant }} ·
{{ t('first_breach') }} {{ a.first_breach_date }} · {{ a.last_breach_date }}</p></div>
<h2>{{ t('trend') }}</h2>{{ chart|safe }}
<h2>{{ t('breaches') }}</h2><table id="breaches"><tr><th>{{ t('when') }}</th>
<th>{{ t('value') }}</th><th>{{ t('status') }}</th></tr>
{% for b in breaches %}<tr><td>{{ b.as_of_date }}</td><td class="num">{{ num(b.value, 4) }}</td>
<td class="{{ b.status }}">{{ b.status }}</td></tr>{% endfor %}</table>
<h2>{{ t('playbook') }}</h2><ol id="playbook">{% for s in a.playbook %}<li>{{ s }}</li>
{% endfor %}</ol>
<h2>{{ t('history') }}</h2><table id="history"><tr><th>{{ t('stage') }}</th>
<th>{{ t('when') }}</th><th>{{ t('by') }}</th><th>{{ t('note') }}</th></tr>
{% for h in a.history %}<tr><td>{{ h.stage }}</td><td>{{ h.at }}</td><td>{{ h.by }}</td>
<td class="note">{{ h.note }}</td></tr>{% endfor %}</table>
{% if next_stage and me.has('analyst') %}
<form method="post" action="{{ url('/alerts/' ~ a.alert_id ~ '/advance') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="to_stage" value="{{ next_stage }}">
<p><label>{{ t('note') }}<br><textarea name="note" id="note" rows="3"></textarea></label></p>
<p><button id="advance">{{ t('advance_to') }} {{ next_stage }}</button></p></form>
{% elif not next_stage %}<p>{{ t('closed') }}</p>{% endif %}
{% endblock %}"""

POLICIES = """{% extends "base.html" %}{% block body %}
<h1>{{ t('policies') }}</h1>
<p>{{ t('active_policy') }}: <b id="active">{{ active }}</b></p>
{% if me.has('risk_manager') %}
<form method="post" action="{{ url('/policies') }}" class="card" id="propose">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="kind" value="cutoff">
<h2>{{ t('propose') }}</h2>
<p><label>{{ t('approve_below') }} <input name="approve_below_pd" id="approve_below_pd"
 inputmode="decimal" required></label>
<label>{{ t('reject_from') }} <input name="reject_from_pd" id="reject_from_pd"
 inputmode="decimal" required></label></p>
<p><label>{{ t('rationale') }}<br><textarea name="rationale" id="rationale" rows="2" required>
</textarea></label></p><p><button id="submit-cutoff">{{ t('propose') }}</button></p></form>
{% if drafts %}
<form method="post" action="{{ url('/policies') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="kind" value="draft">
<h2>{{ t('propose_draft') }}</h2>
<p><select name="draft_version" id="draft-version">{% for d in drafts %}
<option value="{{ d.policy_version }}">v{{ d.policy_version }}: {{ num(d.approve_below_pd, 3) }} /
{{ num(d.cutoff_pd, 3) }} · {{ t('approval_rate') }} {{ pct(d.approval_rate) }} ·
{{ t('bad_rate') }} {{ pct(d.bad_rate) }} · {{ d.model_name or '' }} {{ d.model_version or '' }}
</option>{% endfor %}</select></p>
<p><label>{{ t('rationale') }}<br><textarea name="rationale" id="draft-rationale" rows="2"
 required></textarea></label></p><p><button id="submit-draft">{{ t('propose_draft') }}</button></p>
</form>
{% endif %}
<form method="post" action="{{ url('/policies') }}" class="card" id="backtests-card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<input type="hidden" name="kind" value="backtest">
<h2>{{ t('propose_backtest') }}</h2>
{% if backtests %}
<table id="backtests"><tr><th></th><th>{{ t('proposed') }}</th><th>{{ t('window') }}</th>
<th>{{ t('approval_rate') }}</th><th>{{ t('bad_rate_inferred') }}</th><th>{{ t('guard') }}</th></tr>
{% for b in backtests %}{% set h = b.policies.get('fuzzy', b.policies['none']) %}<tr>
<td><input type="radio" name="backtest_id" value="{{ b.backtest_id }}" id="bt-{{ b.backtest_id }}"
{% if loop.first %} checked{% endif %}></td>
<td><label for="bt-{{ b.backtest_id }}">{{ b.proposed.version }} · {{ b.proposed.model }} ·
{{ num(b.proposed.approve_below_pd, 3) }} / {{ num(b.proposed.reject_from_pd, 3) }}</label></td>
<td>{{ b.window }}</td>
<td class="num">{{ pct(h.active.approval_rate.value) }} →
{{ pct(h.proposed.approval_rate.value) }}</td>
<td class="num">{{ pct(h.active.bad_rate.value) }} → {{ pct(h.proposed.bad_rate.value) }}</td>
<td>{% if b.flags %}<span class="critical">⚑ {{ b.flags|length }}</span>{% else %}ok{% endif %}</td>
</tr>{% endfor %}</table>
<p><label>{{ t('rationale') }}<br><textarea name="rationale" id="backtest-rationale" rows="2"
 required></textarea></label></p>
<p><button id="submit-backtest">{{ t('propose_backtest') }}</button></p>
{% else %}<p id="no-backtests">{{ t('no_backtests') }}</p>{% endif %}</form>
<form method="post" action="{{ url('/policies') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="kind" value="rules">
<h2>{{ t('propose_rules') }}</h2>
<p><label>{{ t('rules_text') }}<br><textarea name="rules" id="rules-text" rows="10">{{ rules_text
 }}</textarea></label></p>
<p><label>{{ t('rationale') }}<br><textarea name="rationale" rows="2" required></textarea>
</label></p><p><button id="submit-rules">{{ t('propose_rules') }}</button></p></form>
{% endif %}
<table id="proposals"><tr><th>#</th><th>{{ t('proposed') }}</th><th>{{ t('proposer') }}</th>
<th>{{ t('status') }}</th><th>{{ t('decision') }}</th></tr>
{% for p in proposals %}<tr><td><a href="{{ url('/policies/' ~ p.id) }}">#{{ p.id }}</a></td>
<td>{{ describe(p) }}</td><td>{{ p.proposer }}</td><td class="status">{{ p.status }}</td>
<td>{{ p.decided_by or '' }} {{ p.activated or '' }}</td></tr>{% endfor %}</table>
{% endblock %}"""

POLICY = """{% extends "base.html" %}{% block body %}
<h1>{{ t('policies') }} #{{ p.id }}</h1>
<div class="card"><p>{{ describe(p) }} · {{ t('proposer') }} {{ p.proposer }} ·
{{ p.created_at[:19] }} · {{ t('status') }} <b id="status">{{ p.status }}</b></p>
<p>{{ t('rationale') }}: {{ p.rationale }}</p>
{% if p.decided_by %}<p>{{ t('decision') }}: {{ p.decided_by }} · {{ p.decision_note }} ·
{{ p.activated or '' }}</p>{% endif %}</div>
{% if p.kind == 'cutoff' %}
<h2>{{ t('preview') }}</h2>
<table id="preview"><tr><th></th><th>{{ t('current') }}</th><th>{{ t('proposed') }}</th></tr>
{% for key, fmt in (('applications', 'int'), ('approval_rate', 'pct'), ('bad_rate', 'pct'),
 ('el_approved', 'money')) %}<tr><th>{{ t(key) }}</th>
{% for side in (p.preview.current, p.preview.proposed) %}<td class="num">
{%- if fmt == 'pct' %}{{ pct(side[key]) }}
{%- elif fmt == 'money' %}{{ money(side['expected_loss']) }}
{%- else %}{{ side[key] }}{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>
<p>{{ t('current') }}: {{ p.preview.current_policy }}</p>
{% if p.preview.sweep %}<p id="sweep">{{ t('sweep') }}: {{ t('approval_rate') }}
{{ pct(p.preview.sweep.approval_rate) }} · {{ t('bad_rate') }} {{ pct(p.preview.sweep.bad_rate) }}
· {{ t('residual_risk') }} {{ pct(p.preview.sweep.residual_risk) }} ·
{{ p.preview.sweep.population }}</p>{% endif %}
{% elif p.kind == 'backtest' %}{% set b = p.preview %}
{% if b.flags %}<div class="err" id="guard-flags"><b>{{ t('guard') }}</b><ul>
{% for f in b.flags %}<li>{{ f }}</li>{% endfor %}</ul></div>
{% else %}<p class="flash" id="guard-flags">{{ t('no_flags') }}</p>{% endif %}
<h2>{{ t('backtest') }} {{ p.payload.backtest_id }}</h2>
<p>{{ t('window') }}: {{ b.window }} · {{ b.created_at }} · {{ t('current') }}:
{{ b.active.version }} ({{ b.active.model }}, {{ num(b.active.approve_below_pd, 3) }} /
{{ num(b.active.reject_from_pd, 3) }})</p>
<table id="backtest-figures"><tr><th>{{ t('method') }}</th><th></th>
<th>{{ t('approvals') }}</th><th>{{ t('approval_rate') }}</th><th>{{ t('bad_rate_range') }}</th>
<th>{{ t('el_approved') }}</th><th>{{ t('profit') }}</th></tr>
{% for method in methods if method in b.policies %}{% for side in ('active', 'proposed') %}
{% set m = b.policies[method][side] %}<tr><td>{{ t('method_' ~ method) }}</td><td>{{ t(side) }}</td>
<td class="num">{{ num(m.approvals.value, 0) }}</td>
<td class="num">{{ pct(m.approval_rate.value) }}</td>
<td class="num">{{ pct(m.bad_rate.value) }}{% if m.bad_rate.low != m.bad_rate.high %}
({{ pct(m.bad_rate.low) }}–{{ pct(m.bad_rate.high) }}){% endif %}</td>
<td class="num">{{ money(m.expected_loss.value) }}</td>
<td class="num">{{ money(m.profit.value) }}</td></tr>{% endfor %}{% endfor %}</table>
<table id="backtest-swaps"><tr><th>{{ t('method') }}</th><th></th><th>{{ t('applications') }}</th>
<th>{{ t('bad_rate_range') }}</th><th>{{ t('profit') }}</th></tr>
{% for method in methods if method in b.swaps %}{% for name in ('swap_in', 'swap_out') %}
{% set m = b.swaps[method][name] %}<tr><td>{{ t('method_' ~ method) }}</td><td>{{ t(name) }}</td>
<td class="num">{{ num(m.applications.value, 0) }}</td>
<td class="num">{{ pct(m.bad_rate.value) }}{% if m.bad_rate.low != m.bad_rate.high %}
({{ pct(m.bad_rate.low) }}–{{ pct(m.bad_rate.high) }}){% endif %}</td>
<td class="num">{{ money(m.profit.value) }}</td></tr>{% endfor %}{% endfor %}</table>
<p>{{ t('range_means') }}</p>
<ul id="backtest-notes">{% for n in b.notes %}<li>{{ n }}</li>{% endfor %}</ul>
{% else %}<h2>{{ t('rules_text') }}</h2><pre id="rules">{{ p.payload.rules }}</pre>
<p>{{ p.preview.summary }}</p>{% endif %}
{% if p.status == 'proposed' and me.has('approver') %}
<form method="post" action="{{ url('/policies/' ~ p.id ~ '/decide') }}" class="card">
<input type="hidden" name="csrf" value="{{ csrf }}">
<p><label>{{ t('note') }}<br><textarea name="note" id="note" rows="2"></textarea></label></p>
<p><button name="decision" value="approve" id="approve">{{ t('approve') }}</button>
<button name="decision" value="reject" id="reject">{{ t('reject') }}</button></p></form>
{% endif %}
{% endblock %}"""

AUDIT = """{% extends "base.html" %}{% block body %}
<h1>{{ t('audit') }}</h1>
<form method="get" class="card"><label>{{ t('actor') }} <input name="actor" value="{{ actor
 }}"></label> <label>{{ t('action') }} <input name="action" value="{{ action }}"></label>
<button>{{ t('filter') }}</button></form>
<table id="audit"><tr><th>#</th><th>{{ t('when') }}</th><th>{{ t('actor') }}</th>
<th>{{ t('action') }}</th><th>{{ t('target') }}</th><th>{{ t('detail') }}</th><th>IP</th></tr>
{% for r in rows %}<tr><td>{{ r.seq }}</td><td>{{ r.at[:19] }}</td><td>{{ r.actor }}</td>
<td class="action">{{ r.action }}</td><td>{{ r.target or '' }}</td><td>{{ r.detail or '' }}</td>
<td>{{ r.client or '' }}</td></tr>{% endfor %}</table>
{% endblock %}"""

USERS = """{% extends "base.html" %}{% block body %}
<h1>{{ t('users') }}</h1>
<table id="users"><tr><th>{{ t('username') }}</th><th>{{ t('role') }}</th>
<th>{{ t('disabled') }}</th><th>{{ t('locked_until') }}</th><th>{{ t('created') }}</th><th></th>
</tr>{% for u in users %}<tr><td>{{ u.username }}</td><td>{{ t(u.role) }}</td>
<td>{{ 'yes' if u.disabled else '' }}</td><td>{{ u.locked_until or '' }}</td>
<td>{{ u.created_at[:19] }}</td><td>{% if not u.disabled and u.username != me.username %}
<form method="post" action="{{ url('/users/' ~ u.username ~ '/disable') }}">
<input type="hidden" name="csrf" value="{{ csrf }}"><button>{{ t('disable') }}</button></form>
{% endif %}</td></tr>{% endfor %}</table>
<p>riskctl users add NAME --role ROLE · riskctl users reset NAME</p>
{% endblock %}"""

ERROR = """{% extends "base.html" %}{% block body %}<h1>{{ title }}</h1>
<p class="err" id="refusal">{{ message }}</p>{% endblock %}"""

PAGES = {
    "base.html": BASE,
    "login.html": LOGIN,
    "dashboard.html": DASHBOARD,
    "reviews.html": REVIEWS,
    "review.html": REVIEW,
    "alerts.html": ALERTS,
    "alert.html": ALERT,
    "policies.html": POLICIES,
    "policy.html": POLICY,
    "audit.html": AUDIT,
    "users.html": USERS,
    "error.html": ERROR,
}


def environment() -> Environment:
    return Environment(
        loader=DictLoader(PAGES), autoescape=select_autoescape(default=True), auto_reload=False
    )
