"""Plain-language texts of reason codes, in English and Chinese.

A model's reason codes name the features that raised an application's risk most
(``modeling.explain``). A decline notice gives the applicant these texts, never a column
name. Every application feature has one (a test keeps it so); a code without one (a
user's own file, a new feature) reads as the generic text. Which features may be given
at all is the model's ``FeatureSpec.not_reasons`` (``RISK_REASON_EXCLUDED``).
"""

from __future__ import annotations

REASON_TEXTS: dict[str, tuple[str, str]] = {
    "requested_amount": ("The amount requested is high.", "申请金额较高。"),
    "term_months": ("The loan term requested.", "申请的借款期限。"),
    "age": ("Your age.", "您的年龄。"),
    "monthly_income": ("Your income is low for this loan.", "您的收入相对本笔借款偏低。"),
    "amount_to_income": (
        "The amount is high compared with your income.",
        "申请金额相对您的收入偏高。",
    ),
    "bureau_score": ("Your credit bureau score.", "您的征信评分。"),
    "inquiries_6m": (
        "Many recent credit inquiries.",
        "近期征信查询次数较多。",
    ),
    "open_loans": ("You have many open loans.", "您当前未结清的贷款较多。"),
    "utilization": ("High use of your credit limits.", "您的授信额度使用率较高。"),
    "overdue_accounts": ("You have overdue accounts.", "您有逾期账户。"),
    "max_dpd_24m": ("Late payments in the past 24 months.", "过去24个月内有逾期还款。"),
    "credit_history_months": ("Your credit history is short.", "您的信用记录较短。"),
    "ev_count_30d": ("Unusual recent account activity.", "近期账户活动异常。"),
    "ev_night_share_30d": ("Unusual recent account activity.", "近期账户活动异常。"),
    "ev_loan_calc_30d": ("Unusual recent account activity.", "近期账户活动异常。"),
    "ev_apply_click_30d": ("Many recent applications.", "近期申请次数较多。"),
    "notes_count_90d": ("Recent service contacts.", "近期客服沟通记录。"),
    "notes_negative_90d": ("Recent service contacts.", "近期客服沟通记录。"),
    "prior_loans": ("Your repayment history with us.", "您在本机构的还款记录。"),
    "prior_max_dpd": ("Late payments on earlier loans with us.", "您在本机构的历史借款有逾期。"),
    "channel": ("The channel the application came through.", "您提交申请的渠道。"),
    "purpose": ("The stated purpose of the loan.", "您填写的借款用途。"),
    "province": ("Where you live.", "您所在的地区。"),
    "employment_type": ("Your type of employment.", "您的就业类型。"),
    "education": ("Your education.", "您的学历。"),
    "prior_late_installments": (
        "Late instalments on earlier loans with us.",
        "您在本机构的历史借款有逾期期数。",
    ),
}
GENERIC_REASON = ("Your overall credit profile.", "您的综合信用状况。")


def reason_texts(code: str) -> tuple[str, str]:
    """(English, Chinese) text of a reason code; the generic text for an unknown code."""
    return REASON_TEXTS.get(code, GENERIC_REASON)
