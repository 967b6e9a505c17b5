"""Typed errors of the medical-insurance client.

The sscard profile (docs/reference.md, medical insurance, row "infcode table")
splits failures in two: the platform answered with
``infcode != 0`` (:class:`PlatformError`, never retried), or we do not know
what happened (:class:`OutcomeUnknown`, the only case that triggers
reconciliation and 2601 reversal). Everything else is caught before sending.
"""

from __future__ import annotations

import re

from sscard.errors import ExitStatus, SscardError

_CJK = re.compile(r"[\u3400-\u9fff]")
_REASONS_ZH = (  # the specific first: "2601 unanswered after 3 attempts (HTTP 500)"
    (re.compile(r"2601 unanswered"), "冲正（2601）多次无应答"),
    (re.compile(r"2601 refused"), "冲正（2601）被拒绝"),
    (re.compile(r"reversal only on the day"), "仅可当日冲正"),
    (re.compile(r"already reconciled"), "当日已对账（3201）"),
    (re.compile(r"cannot be queried or reversed"), "该交易无法查询或冲正"),
    (re.compile(r"unresolved rows"), "有结果未知的交易"),
    (re.compile(r"timeout after ([0-9.]+) s"), "{0} 秒内无应答"),
    (re.compile(r"HTTP ([0-9]+)"), "平台返回状态码 {0}"),
    (re.compile(r"reply over ([0-9,]+) bytes"), "应答超过 {0} 字节，已拒收"),
    (re.compile(r"malformed reply \(not JSON\)"), "应答格式错误（不是JSON）"),
    (re.compile(r"malformed reply \(not a JSON object\)"), "应答格式错误（不是JSON对象）"),
    (re.compile(r"malformed reply \(no infcode\)"), "应答格式错误（缺少 infcode）"),
    (re.compile(r"malformed reply \(infcode not an integer\)"), "应答格式错误（infcode 不是整数）"),
    (re.compile(r"malformed reply"), "应答格式错误"),
    (re.compile(r"unreadable reply"), "应答无法解析"),
    (re.compile(r"ConnectionRefusedError"), "连接被拒绝"),
    (re.compile(r"ConnectionResetError|RemoteDisconnected|BrokenPipeError"), "连接被中断"),
)


def reason_zh(reason: str) -> str:
    """A Chinese rendering of an English failure reason (no English inside the Chinese
    half of a message): the known ones translated, anything else as a network error."""
    for pattern, text in _REASONS_ZH:
        found = pattern.search(reason)
        if found:
            return text.format(*found.groups())
    return "网络或系统错误"


def platform_text_zh(err_msg: str) -> str:
    """The Chinese part of a platform's ``err_msg``: real platforms answer in Chinese;
    the simulator answers "中文 / English", whose English tail is dropped here."""
    head, sep, tail = err_msg.rpartition(" / ")
    if sep and _CJK.search(head) and not _CJK.search(tail):
        return head
    return err_msg


class InsuranceError(SscardError):
    """Base of every medical-insurance error."""

    message_en = "medical-insurance error"
    message_zh = "医保交易错误"


class InvalidRequest(InsuranceError):
    """A request failed validation before it was written or sent."""

    exit_status = ExitStatus.USAGE
    message_en = "invalid medical-insurance request"
    message_zh = "医保请求参数无效"


class InvalidAmount(InvalidRequest):
    """An amount is negative, not a 2-place decimal, or beyond the sanity limit."""

    message_en = "invalid amount"
    message_zh = "金额无效"

    def __init__(self, field: str, reason_en: str, reason_zh: str) -> None:
        self.field = field
        super().__init__(f"invalid amount {field}: {reason_en}", f"金额 {field} 无效：{reason_zh}")


class PlatformError(InsuranceError):
    """The platform answered ``infcode != 0``; its ``err_msg`` is shown as is.

    Never retried automatically (sscard profile, infcode row): the request
    reached the platform and was refused, so repeating it cannot help.
    """

    def __init__(self, infcode: int, err_msg: str, warn_msg: str = "", msgid: str = "") -> None:
        self.infcode = infcode
        self.err_msg = err_msg
        self.warn_msg = warn_msg
        self.msgid = msgid
        super().__init__(
            f"platform refused (infcode {infcode}): {err_msg}",
            f"医保平台拒绝（错误码 {infcode}）：{platform_text_zh(err_msg)}",
        )


class OutcomeUnknown(InsuranceError):
    """No usable reply: timeout, socket failure, HTTP error or malformed body.

    The request may or may not have been applied; the outbox row stays in
    state ``unknown`` until :meth:`InsuranceClient.resolve` settles it
    (§M1.5).
    """

    exit_status = ExitStatus.UNKNOWN

    def __init__(self, msgid: str, infno: str, reason: str) -> None:
        self.msgid = msgid
        self.infno = infno
        self.reason = reason
        super().__init__(
            f"no reply to {infno} (msgid {msgid}): {reason}; outcome unknown, reconcile it",
            f"交易 {infno}（报文 {msgid}）无应答：{reason_zh(reason)}；结果未知，需对账或冲正",
        )


class PlatformUnreachable(OutcomeUnknown):
    """The TCP connection could not be opened, so nothing was sent.

    A subclass of :class:`OutcomeUnknown` for callers that catch the general
    case, but the outbox row is marked ``failed`` (not ``unknown``): connect()
    failed before one byte left, so there is nothing to reverse.
    """

    exit_status = ExitStatus.BACKEND

    def __init__(self, msgid: str, infno: str, reason: str) -> None:
        super().__init__(msgid, infno, reason)
        self.message_en = (
            f"medical-insurance platform unreachable ({reason}); {infno} not sent (msgid {msgid})"
        )
        self.message_zh = (
            f"无法连接医保平台（{reason_zh(reason)}）；交易 {infno} 未发送（报文 {msgid}）"
        )
        self.args = (self.message_en,)


class MalformedReply(OutcomeUnknown):
    """The platform answered, but not with a usable envelope: a body over the size
    limit, not UTF-8 JSON, not a JSON object, or without an integer ``infcode``.

    The request reached the platform and may have been applied, so this is an
    :class:`OutcomeUnknown` (a request with side effects is left ``unknown`` for the
    reconciliation); ``reason`` names the defect, never the body (which may hold
    personal data).
    """


class ManualReconciliationRequired(OutcomeUnknown):
    """Automatic resolution gave up (2601 refused or unanswered 3 times, other day).

    The outbox row is flagged ``manual``: a person must compare both sides.
    """

    exit_status = ExitStatus.UNKNOWN

    def __init__(self, msgid: str, infno: str, reason: str) -> None:
        super().__init__(msgid, infno, reason)
        self.message_en = f"{infno} (msgid {msgid}) needs manual reconciliation: {reason}"
        self.message_zh = f"交易 {infno}（报文 {msgid}）需人工对账：{reason_zh(reason)}"
        self.args = (self.message_en,)


class SettlementNotMade(InsuranceError):
    """A 2207 without reply was found not applied, and barred or undone by 2601.

    Nothing was charged; the desk may settle again (with a new msgid).
    """

    def __init__(self, msgid: str, detail: str = "") -> None:
        self.msgid = msgid
        super().__init__(
            f"settlement {msgid} was not made ({detail}); nothing charged, settle again",
            f"结算 {msgid} 未成功（平台未受理或已冲正）；未扣费，可重新结算",
        )


class ReversalRefused(InsuranceError):
    """A 2601 reversal is not allowed by the sscard profile (wrong infno, day, row)."""

    message_en = "reversal not allowed"
    message_zh = "不允许冲正"


class OutboxError(InsuranceError):
    """The outbox file cannot be used (other institution, corrupt, unknown msgid)."""

    message_en = "outbox error"
    message_zh = "交易日志错误"
