"""The workbench's words in English and Chinese. A page's language comes from ``?lang=``
(remembered in a cookie), else the browser's Accept-Language, else English."""

from __future__ import annotations

LANGS = ("en", "zh")

MESSAGES: dict[str, tuple[str, str]] = {
    "app": ("Risk workbench", "风控工作台"),
    "login": ("Log in", "登录"),
    "logout": ("Log out", "退出"),
    "username": ("User name", "用户名"),
    "password": ("Password", "密码"),
    "login_failed": (
        "Wrong user name or password, or the user is locked or disabled. Five failures in "
        "a row lock a user for 15 minutes; an admin can unlock with `riskctl users reset`.",
        "用户名或密码错误，或用户已锁定或停用。连续失败五次将锁定十五分钟；管理员可用 "
        "`riskctl users reset` 解锁。",
    ),
    "dashboard": ("Dashboard", "总览"),
    "reviews": ("Review queue", "人工审核"),
    "alerts": ("Alerts", "预警"),
    "policies": ("Policy approvals", "策略审批"),
    "audit": ("Audit log", "审计日志"),
    "users": ("Users", "用户"),
    "role": ("Role", "角色"),
    "today": ("Today", "今日"),
    "last30": ("Last 30 days", "近30天"),
    "volume": ("Decisions", "决策量"),
    "approval_rate": ("Approval rate", "通过率"),
    "review_rate": ("Review rate", "转人工率"),
    "reject_rate": ("Reject rate", "拒绝率"),
    "latency": ("Latency p50 / p95 (ms)", "延迟 p50 / p95（毫秒）"),
    "rule_hits": ("Rule hit rates", "规则命中率"),
    "rule": ("Rule", "规则"),
    "hits": ("Hits", "命中"),
    "rate": ("Rate", "比例"),
    "pd_distribution": ("PD distribution (30 days)", "违约概率分布（近30天）"),
    "per_day": ("Decisions per day", "每日决策"),
    "champion_challenger": ("Champion vs challenger", "冠军模型与挑战者模型"),
    "arm": ("Arm", "分组"),
    "mean_pd": ("Mean PD", "平均违约概率"),
    "reviewed": ("Reviewed by people (30 days)", "人工审核结果（近30天）"),
    "open_alerts": ("Open alerts by severity and quadrant", "未关闭预警（按级别与象限）"),
    "indicators": ("Early-warning indicators", "早期预警指标"),
    "indicator": ("Indicator", "指标"),
    "segment": ("Segment", "分组"),
    "value": ("Value", "数值"),
    "warning": ("Warning", "预警线"),
    "critical": ("Critical", "严重线"),
    "threshold_source": ("Threshold source", "阈值来源"),
    "status": ("Status", "状态"),
    "expected_loss": ("Portfolio expected loss", "资产组合预期损失"),
    "loans": ("Loans", "贷款笔数"),
    "el_approved": ("Expected loss of the approved", "通过申请的预期损失"),
    "no_data": ("Nothing yet.", "暂无数据。"),
    "figures_as_of": ("Decision figures as of", "决策数据截至"),
    "lake_unavailable": (
        "The lakehouse could not be read; the service log says why.",
        "无法读取数据湖；原因见服务日志。",
    ),
    "application": ("Application", "申请"),
    "decided_at": ("Decided at", "决策时间"),
    "product": ("Product", "产品"),
    "assigned": ("Assigned to", "处理人"),
    "assign_me": ("Assign to me", "分配给我"),
    "assign": ("Assign", "分配"),
    "open": ("Open", "打开"),
    "features": ("Features the model used", "模型使用的特征"),
    "reasons": ("Reason codes", "原因代码"),
    "rules_fired": ("Rules fired", "命中规则"),
    "records": ("Linked public records (masked)", "关联公共记录（已脱敏）"),
    "approve": ("Approve", "通过"),
    "reject": ("Reject", "拒绝"),
    "review": ("Review", "人工审核"),
    "reason": ("Reason", "理由"),
    "decide": ("Decide", "决定"),
    "queue_empty": ("No application waits for review.", "没有待审核的申请。"),
    "reviewed_as": ("Reviewed", "已审核"),
    "by": ("by", "审核人"),
    "stage": ("Stage", "阶段"),
    "severity": ("Severity", "级别"),
    "quadrant": ("Quadrant", "象限"),
    "first_breach": ("First breach", "首次触发"),
    "playbook": ("Playbook", "处置预案"),
    "history": ("History", "历史"),
    "breaches": ("Breaches", "触发记录"),
    "note": ("Note", "备注"),
    "advance_to": ("Advance to", "推进到"),
    "closed": ("Closed: no step follows.", "已关闭，没有后续步骤。"),
    "trend": ("Trend", "走势"),
    "propose": ("Propose a cut-off", "提交阈值变更"),
    "propose_rules": ("Propose a rule set", "提交规则变更"),
    "propose_draft": ("Propose a draft cut-off (riskctl cutoff)", "提交待批阈值（riskctl cutoff）"),
    "propose_backtest": (
        "Propose a backtested policy (riskctl policy backtest)",
        "提交已回测的策略（riskctl policy backtest）",
    ),
    "no_backtests": (
        "No backtest yet: run `riskctl policy backtest --proposed FILE` to replay a policy on "
        "history, then propose it here.",
        "尚无回测：先运行 `riskctl policy backtest --proposed FILE` "
        "在历史申请上回放策略，再在此提交。",
    ),
    "backtest": ("Backtest", "回测"),
    "window": ("Applications decided in", "回放的申请月份"),
    "guard": ("Guard flags: check before approving", "守护提示：审批前请核查"),
    "no_flags": (
        "No guard flag: approval rate and bad rate move within the configured limits.",
        "无守护提示：通过率与坏账率的变化在设定范围内。",
    ),
    "bad_rate_inferred": ("Bad rate (fuzzy inference)", "坏账率（模糊增强推断）"),
    "bad_rate_range": ("Bad rate (range over both models)", "坏账率（两模型推断区间）"),
    "approvals": ("Lent", "放款数"),
    "profit": ("Profit", "利润"),
    "method": ("Reject inference", "拒绝推断"),
    "method_none": ("none (known outcomes)", "无（仅已知结果）"),
    "method_parcelling": ("parcelling", "分组法"),
    "method_fuzzy": ("fuzzy augmentation", "模糊增强"),
    "active": ("Active", "当前"),
    "swap_in": ("Swap-in", "换入"),
    "swap_out": ("Swap-out", "换出"),
    "range_means": (
        "A range is the same figure with the rejected applicants' outcomes inferred by the "
        "other model's PD: the spread between the two models, not a confidence interval.",
        "区间为用另一模型的 PD 推断被拒申请结果时的同一指标：两模型之间的差异，并非置信区间。",
    ),
    "sweep": ("On the out-of-time window of its sweep", "在其扫描的跨期样本上"),
    "residual_risk": ("Residual risk", "剩余风险"),
    "approve_below": ("Approve below PD", "通过阈值（PD 低于）"),
    "reject_from": ("Reject from PD", "拒绝阈值（PD 不低于）"),
    "rationale": ("Rationale", "理由说明"),
    "preview": ("What it would do on recent applications", "在近期申请上的效果"),
    "current": ("Current", "当前"),
    "proposed": ("Proposed", "提议"),
    "bad_rate": ("Expected bad rate", "预期坏账率"),
    "applications": ("Applications", "申请数"),
    "proposer": ("Proposer", "提议人"),
    "decision": ("Decision", "决定"),
    "active_policy": ("Active cut-off", "当前生效阈值"),
    "rules_text": ("Rules file (YAML)", "规则文件（YAML）"),
    "forbidden": ("Your role may not do this.", "您的角色无权执行此操作。"),
    "actor": ("Who", "操作人"),
    "action": ("What", "操作"),
    "target": ("On", "对象"),
    "detail": ("Detail", "详情"),
    "when": ("When", "时间"),
    "filter": ("Filter", "筛选"),
    "disabled": ("Disabled", "已停用"),
    "locked_until": ("Locked until", "锁定至"),
    "disable": ("Disable", "停用"),
    "created": ("Created", "创建时间"),
    "error": ("Refused", "已拒绝"),
    "done": ("Done", "已完成"),
}

ROLE_NAMES = {
    "viewer": ("viewer", "查看者"),
    "analyst": ("analyst", "分析员"),
    "reviewer": ("reviewer", "审核员"),
    "risk_manager": ("risk manager", "风险经理"),
    "approver": ("approver", "审批人"),
    "admin": ("admin", "管理员"),
}


def pick(query: str | None, cookie: str | None, accept: str | None) -> str:
    for value in (query, cookie):
        if value in LANGS:
            return value
    return "zh" if (accept or "").lower().startswith("zh") else "en"


def translator(lang: str):
    i = LANGS.index(lang)

    def t(key: str) -> str:
        found = MESSAGES.get(key) or ROLE_NAMES.get(key)
        return found[i] if found else key

    return t
