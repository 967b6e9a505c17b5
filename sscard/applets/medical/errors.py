"""The desk's errors: each says what failed *and* what was undone.

A visit is never left half-done (medical-insurance.md §1.5: cancellation is
2205 → 2202, a settlement 2208 → 2205 → 2202); :class:`Cleanup` records which of
those steps succeeded so the message can tell the desk how to finish by hand.
A cross-province visit without a filing stops before 2201 (§1.6; sscard profile,
"Cross-province filing check").
"""

from __future__ import annotations

from dataclasses import dataclass

from sscard.errors import SscardError
from sscard.services.insurance import InsuranceError, PlatformError


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
    """The card cannot be used for settlement (expired, holder data unreadable)."""

    message_en = "card cannot be used for medical settlement"
    message_zh = "该卡不能用于医保结算"


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
        super().__init__(
            f"{stage} failed: {cause.message_en}; {en}",
            f"{stage} 失败：{cause.message_zh}；{zh}",
            code=cause.code,
        )


class SettlementDeclined(VisitAborted):
    """The desk did not confirm the pre-settlement; the visit was cancelled."""

    def __init__(self, cleanup: Cleanup) -> None:
        cause = InsuranceError("not confirmed at the desk", "前台未确认结算")
        super().__init__("confirmation", cause, cleanup)


class CancelIncomplete(InsuranceError):
    """2208 succeeded (the money is back) but 2205/2202 did not finish."""

    def __init__(self, setl_id: str, cleanup: Cleanup) -> None:
        self.setl_id = setl_id
        self.cleanup = cleanup
        en, zh = cleanup.summary()
        super().__init__(
            f"settlement {setl_id} cancelled (2208); {en}", f"结算 {setl_id} 已撤销（2208）；{zh}"
        )
