"""The desk's errors: each says what failed *and* what was undone.

A visit is never left half-done (§M1.5: cancellation is
2205 → 2202, a settlement 2208 → 2205 → 2202); :class:`Cleanup` records which of
those steps succeeded so the message can tell the desk how to finish by hand.
A cross-province visit without a filing stops before 2201 (§M1.6; sscard profile,
"Cross-province filing check").
"""

from __future__ import annotations

from dataclasses import dataclass

from sscard.errors import ExitStatus, SscardError
from sscard.services.insurance import InsuranceError, OutboxRow, PlatformError


class FilingRequired(InsuranceError):
    """Cross-province visit without a filing (异地就医备案); nothing was registered.

    The insured area answered ``NOT_FILED`` to the filing check (sscard profile,
    "Cross-province filing check"); the platform would refuse 2206/2207 anyway.
    """

    def __init__(self, insuplc_admdvs: str, mdtrtarea_admvs: str, med_type: str) -> None:
        self.insuplc_admdvs = insuplc_admdvs
        self.mdtrtarea_admvs = mdtrtarea_admvs
        super().__init__(
            f"cross-province treatment not filed: the insured area {insuplc_admdvs} has no "
            f"filing for treatment in {mdtrtarea_admvs} (med_type {med_type}); nothing "
            "registered — the patient can file via the national medical-insurance app",
            f"跨省异地就医未备案：参保地 {insuplc_admdvs} 无到就医地 {mdtrtarea_admvs} 的备案"
            f"（医疗类别 {med_type}）；未登记——参保人可通过国家医保服务平台办理备案",
        )


class CardNotUsable(InsuranceError):
    """The card cannot be used for settlement (expired, locked, holder data unreadable)."""

    message_en = "card cannot be used for medical settlement"
    message_zh = "该卡不能用于医保结算"


class WrongPerson(InsuranceError):
    """1101 answered with a person who is not the cardholder read at the desk.

    Card numbers repeat across provinces (§M1.7), so the
    platform's answer is checked against the card's EF06 (SSN, name) before
    anything is registered: settling on someone else's insurance account is the
    worst mistake a desk can make. Nothing was registered; the refusal is in the
    audit log and on the 1101 row of the outbox (masked).
    """

    def __init__(self, reasons: tuple[str, ...]) -> None:
        self.reasons = reasons
        what_en = " and ".join({"ssn_mismatch": "SSN", "name_mismatch": "name"}[r] for r in reasons)
        what_zh = "、".join(
            {"ssn_mismatch": "社会保障号码", "name_mismatch": "姓名"}[r] for r in reasons
        )
        super().__init__(
            f"the platform's person does not match the card ({what_en} differ): not "
            "registered, nothing charged; check the card and ask the patient for an ID card "
            "or the medical-insurance e-voucher",
            f"医保平台返回的人员与卡片不符（{what_zh}不一致）：未登记、未扣费；"
            "请核对卡片，或请参保人改用身份证、医保电子凭证",
        )


class UnresolvedSettlement(InsuranceError):
    """The patient has a settlement whose outcome is not known yet: no new visit.

    Settling again could charge the same service twice; the desk must
    first learn what happened to the earlier one.
    """

    exit_status = ExitStatus.UNKNOWN

    def __init__(self, rows: list[OutboxRow]) -> None:
        self.msgids = tuple(r.msgid for r in rows)
        listed = ", ".join(self.msgids)
        super().__init__(
            f"this patient has a settlement with unknown outcome (msgid {listed}); not "
            "registered: run `sscard medical recover` when the platform answers, or reconcile "
            "it by hand, before settling again",
            f"该参保人有结果未知的结算（报文 {listed}）；未登记：请在医保平台可用时执行 "
            "`sscard medical recover` 或人工核对后再结算",
        )


class RecoveredSettlement(InsuranceError):
    """The patient has a settlement whose receipt nobody has seen: the platform made
    it, but the desk process died before handing it out (found by the recovery).

    Settling the same visit again would charge it twice. ``--settle-again``
    (``FrontDesk.settle(..., settle_again=True)``) acknowledges it for a different visit.
    """

    def __init__(self, rows: list[OutboxRow]) -> None:
        self.setl_ids = tuple(r.setl_id or r.msgid for r in rows)
        listed = ", ".join(self.setl_ids)
        first = self.setl_ids[0] if self.setl_ids else ""
        super().__init__(
            f"this patient already has settlement {listed}, completed on the platform after "
            "an interrupted session (no receipt was given); not registered: if it is this "
            f"visit, do not settle again (cancel it with `sscard medical cancel {first}` if it "
            "should not stand); for a different visit add --settle-again",
            f"该参保人已有结算 {listed}（会话中断后平台已完成，未出结算单）；未登记："
            f"如为本次就诊，请勿重复结算（如需撤销请执行 `sscard medical cancel {first}`）；"
            "如为另一次就诊，请加 --settle-again",
        )


@dataclass(frozen=True)
class Cleanup:
    """What was undone after a failed visit: ``steps`` are the infnos that succeeded."""

    mdtrt_id: str
    steps: tuple[str, ...]
    error_en: str = ""
    error_zh: str = ""

    @property
    def complete(self) -> bool:
        return not self.error_en

    def summary(self) -> tuple[str, str]:
        if self.complete and not self.mdtrt_id:
            return (
                "registration reversed (2601); nothing registered or charged",
                "挂号已冲正（2601），未登记、未扣费",
            )
        if self.complete:
            done = ", ".join(self.steps)
            return (
                f"visit {self.mdtrt_id} cancelled ({done}); nothing charged",
                f"就诊 {self.mdtrt_id} 已撤销（{done}），未扣费",
            )
        return (
            f"could not cancel visit {self.mdtrt_id} ({self.error_en}); it stays registered "
            f"on the platform: run `sscard medical cancel --visit {self.mdtrt_id}` once the "
            "platform is reachable; nothing was charged",
            f"撤销就诊 {self.mdtrt_id} 失败（{self.error_zh}），平台上仍为已登记；平台恢复后请执行 "
            f"`sscard medical cancel --visit {self.mdtrt_id}`；未扣费",
        )


class VisitAborted(InsuranceError):
    """A step after 2201 failed before settlement; the visit was cancelled (or not: see
    :attr:`cleanup`). ``cause`` is the original error, ``err_msg`` the platform's text."""

    def __init__(self, stage: str, cause: SscardError, cleanup: Cleanup) -> None:
        self.stage = stage
        self.cause = cause
        self.cleanup = cleanup
        self.err_msg = cause.err_msg if isinstance(cause, PlatformError) else ""
        en, zh = cleanup.summary()
        stage_zh = {"confirmation": "确认", "visit": "就诊"}.get(stage, f"交易 {stage}")
        super().__init__(
            f"{stage} failed: {cause.message_en}; {en}",
            f"{stage_zh} 失败：{cause.message_zh}；{zh}",
            code=cause.code,
        )


class SettlementDeclined(VisitAborted):
    """The desk did not confirm the pre-settlement; the registration was cancelled."""

    def __init__(self, cleanup: Cleanup) -> None:
        cause = InsuranceError("not confirmed at the desk", "前台未确认结算")
        super().__init__("confirmation", cause, cleanup)
        if cleanup.complete:
            self.message_en = (
                f"settlement not confirmed at the desk: registration cancelled (visit "
                f"{cleanup.mdtrt_id}: {', '.join(cleanup.steps)}); nothing charged"
            )
            self.message_zh = (
                f"前台未确认结算：挂号已撤销（就诊 {cleanup.mdtrt_id}："
                f"{'、'.join(cleanup.steps)}），未扣费"
            )
            self.args = (self.message_en,)


class CancelIncomplete(InsuranceError):
    """2208 succeeded (the money is back) but 2205/2202 did not finish."""

    def __init__(self, setl_id: str, cleanup: Cleanup) -> None:
        self.setl_id = setl_id
        self.cleanup = cleanup
        en, zh = cleanup.summary()
        super().__init__(
            f"settlement {setl_id} cancelled (2208); {en}", f"结算 {setl_id} 已撤销（2208）；{zh}"
        )
