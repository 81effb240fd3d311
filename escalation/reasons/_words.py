"""The words reasons are made of, per locale: what each channel's action is
called, what each fact, record date, outcome and flag is called. Anything
not listed falls back to its identifier read as words (``sms_reminder`` →
``sms reminder``), so a reason never shows an internal id as such."""

from __future__ import annotations

import re

from escalation._language import Locale

__all__ = ["CHANNEL", "FACTS", "FLAGS", "OUTCOMES", "RECORD_DATES", "as_words", "word"]

_IDENT = re.compile(r"[A-Za-z0-9]+(?:[_.][A-Za-z0-9]+)+")


def as_words(text: str) -> str:
    """Identifiers in ``text`` read as words, backticks dropped:
    ``` `negative_info_notice_sent_at` ``` → ``negative info notice sent at``."""
    text = text.replace("`", "")
    return _IDENT.sub(lambda m: re.sub(r"[_.]", " ", m.group(0)), text)


def word(table: dict[str, dict[Locale, str]], key: str, locale: Locale) -> str:
    """``table[key]`` in ``locale`` (then ``en``), else the key read as words."""
    entry = table.get(key)
    if entry is None:
        return as_words(key)
    return entry.get(locale) or entry["en"]


# What each channel's action is called: (en generic noun, en past verb for a
# count, zh generic noun, zh verb, zh measure word).
CHANNEL: dict[str, tuple[str, str, str, str, str]] = {
    "sms": ("SMS", "sent", "短信", "发送", "条"),
    "phone": ("call", "made", "电话", "致电", "次"),
    "email": ("email", "sent", "电子邮件", "发送", "封"),
    "letter": ("letter", "sent", "信函", "寄出", "封"),
    "visit": ("visit", "made", "上门外访", "外访", "次"),
    "legal": ("referral", "made", "法律转介", "转介", "次"),
    "bureau": ("report", "made", "征信报送", "报送", "次"),
}

# Facts: a phrase with ``{v}`` (the figure, already formatted).
FACTS: dict[str, dict[Locale, str]] = {
    "days_overdue": {"en": "{v} days overdue", "zh-CN": "逾期{v}天"},
    "amount_overdue": {"en": "{v} overdue", "zh-CN": "逾期金额{v}"},
    "balance": {"en": "a balance of {v}", "zh-CN": "余额{v}"},
    "principal": {"en": "principal of {v}", "zh-CN": "本金{v}"},
    "paid_in_cycle": {"en": "{v} paid this cycle", "zh-CN": "本期已还{v}"},
    "promise_shortfall": {"en": "{v} short of the promise", "zh-CN": "承诺尚差{v}"},
    "last_payment_amount": {"en": "a last payment of {v}", "zh-CN": "上次还款{v}"},
    "promise_to_pay.amount": {"en": "a promise of {v}", "zh-CN": "承诺金额{v}"},
    "broken_promises": {"en": "{v} broken promises", "zh-CN": "{v}次违约承诺"},
    "conversations_30d": {"en": "{v} conversations in 30 days", "zh-CN": "30天内通话{v}次"},
    "days_since_payment": {"en": "{v} days since the last payment", "zh-CN": "距上次还款{v}天"},
    "consecutive_failed_attempts": {"en": "{v} unanswered calls in a row", "zh-CN": "连续{v}次未接通"},
    "consent_day": {"en": "day {v} of the consent", "zh-CN": "同意期第{v}天"},
    "local_hour": {"en": "hour {v}", "zh-CN": "{v}时"},
    "product": {"en": "product {v}", "zh-CN": "产品为{v}"},
    "segment": {"en": "segment {v}", "zh-CN": "客群为{v}"},
    "jurisdiction": {"en": "jurisdiction {v}", "zh-CN": "辖区为{v}"},
}

# Facts that are yes/no: (true, false) phrases.
BOOLS: dict[str, dict[Locale, tuple[str, str]]] = {
    "time_barred": {
        "en": ("a time-barred debt", "a debt not time-barred"),
        "zh-CN": ("债务已过诉讼时效", "债务未过诉讼时效"),
    },
    "promise_active": {
        "en": ("a promise to pay outstanding", "no promise to pay outstanding"),
        "zh-CN": ("有未到期的还款承诺", "无未到期的还款承诺"),
    },
    "promise_kept": {
        "en": ("the promise kept", "the promise not kept"),
        "zh-CN": ("承诺已履行", "承诺未履行"),
    },
    "promise_broken": {
        "en": ("a broken promise", "no broken promise"),
        "zh-CN": ("承诺已违约", "承诺未违约"),
    },
    "plan_active": {
        "en": ("an active payment plan", "no active payment plan"),
        "zh-CN": ("还款计划履行中", "无履行中的还款计划"),
    },
    "in_validation_period": {
        "en": ("the validation period running", "the validation period over"),
        "zh-CN": ("处于债务核实期", "债务核实期已过"),
    },
    "number_invalid": {
        "en": ("an invalid phone number", "a working phone number"),
        "zh-CN": ("号码无效", "号码有效"),
    },
    "dispute_open": {"en": ("an open dispute", "no open dispute"), "zh-CN": ("有未决争议", "无未决争议")},
    "cease_received": {
        "en": ("a cease-communication request", "no cease-communication request"),
        "zh-CN": ("客户要求停止联系", "客户未要求停止联系"),
    },
    "breathing_space_active": {
        "en": ("a Breathing Space moratorium", "no Breathing Space moratorium"),
        "zh-CN": ("处于喘息期", "不在喘息期"),
    },
}

# Per-tier fact families: ``{v}`` the figure, ``{label}`` the tier's label.
FAMILIES: dict[str, dict[Locale, str]] = {
    "done": {"en": "the {label} done {v} times", "zh-CN": "{label}{v}次"},
    "attempts": {"en": "{v} {label} attempts", "zh-CN": "{label}尝试{v}次"},
    "days_since": {"en": "{v} days since the {label}", "zh-CN": "距上次{label}{v}天"},
    "contacts_7d": {"en": "{v} {label} contacts in 7 days", "zh-CN": "7天内{label}联系{v}次"},
    "contacts_30d": {"en": "{v} {label} contacts in 30 days", "zh-CN": "30天内{label}联系{v}次"},
}

FLAGS: dict[str, dict[Locale, str]] = {
    "dispute": {"en": "dispute", "zh-CN": "争议"},
    "cease_communication": {"en": "cease communication", "zh-CN": "停止联系"},
    "bankruptcy": {"en": "bankruptcy", "zh-CN": "破产"},
    "deceased": {"en": "deceased", "zh-CN": "已故"},
    "hardship": {"en": "hardship", "zh-CN": "经济困难"},
    "breathing_space": {"en": "Breathing Space", "zh-CN": "喘息期"},
    "legal_hold": {"en": "legal hold", "zh-CN": "法律冻结"},
    "vulnerable": {"en": "vulnerable", "zh-CN": "弱势客户"},
    "fraud": {"en": "fraud", "zh-CN": "欺诈"},
}

OUTCOMES: dict[str, dict[Locale, str]] = {
    "undeliverable": {"en": "returned undeliverable", "zh-CN": "被退回"},
    "failed": {"en": "failed", "zh-CN": "失败"},
    "not_in_service": {"en": "not in service", "zh-CN": "号码停用"},
    "wrong_party": {"en": "reached the wrong person", "zh-CN": "联系到非本人"},
    "returned": {"en": "returned", "zh-CN": "被退回"},
    "busy": {"en": "busy", "zh-CN": "占线"},
    "no_answer": {"en": "not answered", "zh-CN": "无人接听"},
    "voicemail": {"en": "left on voicemail", "zh-CN": "转入语音信箱"},
    "sent": {"en": "sent", "zh-CN": "已发出"},
}

RECORD_DATES: dict[str, dict[Locale, str]] = {
    "validation_notice_sent_at": {"en": "the validation notice", "zh-CN": "债务核实通知"},
    "last_payment_at": {"en": "the last payment", "zh-CN": "上次还款"},
    "charged_off_at": {"en": "the charge-off", "zh-CN": "核销"},
    "overdue_since": {"en": "the first missed due date", "zh-CN": "首次逾期日"},
    "due_date": {"en": "the due date", "zh-CN": "到期日"},
    "promise_to_pay.due_date": {"en": "the promised date", "zh-CN": "承诺还款日"},
    "promise_to_pay.made_at": {"en": "the promise", "zh-CN": "承诺"},
    "payment_plan.next_due_date": {"en": "the next instalment", "zh-CN": "下期分期"},
    "dispute_received_at": {"en": "the dispute", "zh-CN": "争议"},
    "verification_sent_at": {"en": "the verification", "zh-CN": "债务核实"},
    "cease_communication_received_at": {"en": "the cease-communication request", "zh-CN": "停止联系请求"},
    "default_notice_served_at": {"en": "the service of the default notice", "zh-CN": "违约通知送达"},
    "letter_of_claim_at": {"en": "the letter of claim", "zh-CN": "索赔函"},
    "breathing_space.start": {"en": "the start of the Breathing Space", "zh-CN": "喘息期开始"},
    "breathing_space.end": {"en": "the end of the Breathing Space", "zh-CN": "喘息期结束"},
    "negative_info_notice_sent_at": {
        "en": "the notice of negative credit reporting",
        "zh-CN": "报送不良信息的事先告知",
    },
}
