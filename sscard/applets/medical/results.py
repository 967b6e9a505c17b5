"""What the desk gets back, and the bilingual text the patient and the desk see.

The receipt shows the platform's fund split exactly as returned (2206/2207
``setlinfo``, §M1.3), the area case (§M1.6) and, masked by
default, who paid (regulation.md Art. 18). A cancellation shows the 2208 answer
(§M1.5). Labels are aligned by display width, CJK characters counting double.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sscard.applets.medical.errors import Cleanup
from sscard.applets.medical.inputs import CardIdentity, VisitPlan
from sscard.cards.privacy import mask_card_number, mask_middle, mask_name, mask_ssn
from sscard.cards.regions import UnknownRegion, region_of
from sscard.services.insurance import (
    AreaCase,
    FilingStatus,
    InsuInfo,
    PersonInfo,
    Resolution,
    SetlInfo,
    Settlement,
    SettleRequest,
)
from sscard.text import display_width

MED_TYPES = {
    "11": ("普通门诊", "general outpatient"),
    "14": ("门诊慢特病", "outpatient chronic or special disease"),
    "21": ("普通住院", "general inpatient"),
}
AREA_LABELS = {
    AreaCase.LOCAL: ("本地", "local"),
    AreaCase.IN_PROVINCE: ("省内异地", "in-province, other area"),
    AreaCase.CROSS_PROVINCE: ("跨省异地", "cross-province"),
}


@dataclass(frozen=True)
class Patient:
    """The card, its 1101 answer and the area case; ``filing`` is None unless cross-province."""

    card: CardIdentity
    person: PersonInfo
    insurance: InsuInfo
    mdtrtarea_admvs: str
    area_case: AreaCase
    filing: FilingStatus | None

    @property
    def psn_no(self) -> str:
        return self.person.psn_no

    @property
    def insuplc_admdvs(self) -> str:
        return self.insurance.insuplc_admdvs


@dataclass(frozen=True)
class Registration:
    """A 2201 registration: ``mdtrt_id`` from the platform, our outpatient number and batch."""

    mdtrt_id: str
    ipt_otp_no: str
    chrg_bchno: str
    begntime: str
    msgid: str


@dataclass(frozen=True)
class PreSettlement:
    """The 2206 answer the desk shows before confirming (fund, personal account, cash)."""

    patient: Patient
    registration: Registration
    visit: VisitPlan
    request: SettleRequest
    settlement: Settlement

    @property
    def split(self) -> SetlInfo:
        return self.settlement.setlinfo

    def text(self, *, redact: bool = True) -> str:
        head = [
            "预结算 Pre-settlement",
            *_identity_lines(self.patient, redact),
        ]
        return "\n".join(head + _split_lines(self.split))


@dataclass(frozen=True)
class Receipt:
    """The settlement (2207) as the patient's receipt, text and JSON."""

    fixmedins_code: str
    fixmedins_name: str
    patient: Patient
    registration: Registration
    visit: VisitPlan
    settlement: Settlement

    @property
    def setlinfo(self) -> SetlInfo:
        return self.settlement.setlinfo

    @property
    def setl_id(self) -> str:
        return self.setlinfo.setl_id

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        info = self.setlinfo
        card, p = self.patient.card, self.patient
        return {
            "receipt": "medical-settlement",
            "fixmedins_code": self.fixmedins_code,
            "fixmedins_name": self.fixmedins_name,
            "setl_id": info.setl_id,
            "mdtrt_id": info.mdtrt_id,
            "msgid": self.settlement.msgid,
            "setl_time": info.setl_time,
            "ipt_otp_no": self.registration.ipt_otp_no,
            "patient": {
                "name": mask_name(card.name) if redact else card.name,
                "ssn": mask_ssn(card.ssn) if redact else card.ssn,
                "card_number": mask_card_number(card.card_number) if redact else card.card_number,
                "psn_no": _mask_psn(p.psn_no) if redact else p.psn_no,
            },
            "insuplc_admdvs": p.insuplc_admdvs,
            "mdtrtarea_admvs": p.mdtrtarea_admvs,
            "area_case": p.area_case.value,
            "filing": p.filing.value if p.filing else None,
            "med_type": info.med_type,
            "insutype": info.insutype,
            "items": [
                {
                    "feedetl_sn": i.feedetl_sn,
                    "med_list_codg": i.med_list_codg,
                    "name": i.medins_list_name,
                    "cnt": str(i.cnt),
                    "pric": str(i.pric),
                    "amount": str(i.det_item_fee_sumamt),
                }
                for i in self.visit.items
            ],
            "split": {name: str(getattr(info, name)) for name, _zh, _en in _SPLIT_FIELDS},
        }

    def text(self, *, redact: bool = True) -> str:
        info = self.setlinfo
        lines = [
            "医保结算单 Medical insurance settlement receipt",
            _row("定点机构", "Institution", f"{self.fixmedins_name} ({self.fixmedins_code})"),
            _row("结算编号", "Settlement ID", info.setl_id),
            _row("就诊编号", "Visit ID", info.mdtrt_id),
            _row("门诊号", "Outpatient no.", self.registration.ipt_otp_no),
            _row("结算时间", "Settled at", info.setl_time),
            *_identity_lines(self.patient, redact),
            _row("医疗类别", "Medical type", _med_type(info.med_type)),
            "费用明细 Fee items",
        ]
        for item in self.visit.items:
            label = item.medins_list_name or item.medins_list_codg
            lines.append(
                f"  {item.feedetl_sn:>3}  {item.med_list_codg:<10} {label}  "
                f"{item.cnt.normalize():f} × {item.pric.normalize():f} = "
                f"{item.det_item_fee_sumamt}"
            )
        lines += _split_lines(info)
        lines.append(_row("报文号", "Message ID", self.settlement.msgid))
        return "\n".join(lines)


@dataclass(frozen=True)
class Cancellation:
    """A cancelled settlement: the 2208 answer (negated amounts) and the balance after."""

    setl_id: str
    mdtrt_id: str
    reversal: Settlement
    steps: tuple[str, ...]

    @property
    def balc(self) -> Decimal:
        return self.reversal.setlinfo.balc

    def to_dict(self) -> dict[str, Any]:
        info = self.reversal.setlinfo
        return {
            "cancelled_setl_id": self.setl_id,
            "mdtrt_id": self.mdtrt_id,
            "cancel_setl_id": info.setl_id,
            "steps": list(self.steps),
            "refunded": {
                "fund_pay_sumamt": str(-info.fund_pay_sumamt),
                "acct_pay": str(-info.acct_pay),
                "psn_cash_pay": str(-info.psn_cash_pay),
            },
            "balc": str(self.balc),
        }

    def text(self) -> str:
        info = self.reversal.setlinfo
        return "\n".join(
            [
                f"结算已撤销 Settlement cancelled: {self.setl_id} ({' → '.join(self.steps)})",
                _row("就诊编号", "Visit ID", self.mdtrt_id),
                _row("退回基金", "Fund returned", str(-info.fund_pay_sumamt)),
                _row("退回个人账户", "Account refunded", str(-info.acct_pay)),
                _row("退还现金", "Cash to refund", str(-info.psn_cash_pay)),
                _row("账户余额", "Account balance", str(self.balc)),
            ]
        )


# --------------------------------------------------------------------------- formatting

_SPLIT_FIELDS = (
    ("medfee_sumamt", "医疗费总额", "Total medical fees"),
    ("fulamt_ownpay_amt", "全自费", "Fully self-paid"),
    ("preselfpay_amt", "先行自付", "Initial self-payment"),
    ("inscp_scp_amt", "符合范围", "In scope"),
    ("act_pay_dedc", "起付线", "Deductible applied"),
    ("fund_pay_sumamt", "基金支付", "Fund pays"),
    ("acct_pay", "个人账户", "Personal account"),
    ("psn_cash_pay", "现金支付", "Cash"),
    ("balc", "账户余额", "Account balance after"),
)
_LABEL_WIDTH = 34


def _row(zh: str, en: str, value: str) -> str:
    label = f"{zh} {en}"
    return f"{label}{' ' * max(1, _LABEL_WIDTH - display_width(label))}: {value}"


def _split_lines(info: SetlInfo) -> list[str]:
    return [_row(zh, en, str(getattr(info, name))) for name, zh, en in _SPLIT_FIELDS]


def _mask_psn(psn_no: str) -> str:
    return mask_middle(psn_no, 6, 4)


def _med_type(code: str) -> str:
    zh, en = MED_TYPES.get(code, ("", ""))
    return f"{code} {zh} {en}".strip()


def _area(code: str) -> str:
    try:
        region = region_of(code)
    except UnknownRegion:
        return code
    return f"{code} {region.name_zh}"


def _identity_lines(p: Patient, redact: bool) -> list[str]:
    card = p.card
    zh, en = AREA_LABELS[p.area_case]
    case = f"{zh} {en}" + (f" (备案 filing: {p.filing.value})" if p.filing else "")
    return [
        _row("姓名", "Name", mask_name(card.name) if redact else card.name),
        _row("社会保障号码", "SSN", mask_ssn(card.ssn) if redact else card.ssn),
        _row(
            "卡号",
            "Card number",
            mask_card_number(card.card_number) if redact else card.card_number,
        ),
        _row("参保地", "Insured area", _area(p.insuplc_admdvs)),
        _row("就医地", "Treatment area", _area(p.mdtrtarea_admvs)),
        _row("异地类别", "Area case", case),
    ]


@dataclass(frozen=True)
class Recovery:
    """What :meth:`FrontDesk.recover` did with what an interrupted session left behind:
    rows resolved with the platform, visits cancelled (2205 → 2202), rows left alone
    because their process still runs, and rows that still need a person."""

    resolutions: tuple[Resolution, ...] = ()
    visits: tuple[Cleanup, ...] = ()
    unresolved: tuple[str, ...] = ()

    @property
    def acted(self) -> tuple[Resolution, ...]:
        return tuple(r for r in self.resolutions if r.action not in ("none", "skipped"))

    @property
    def empty(self) -> bool:
        return not self.acted and not self.visits and not self.unresolved

    @property
    def complete(self) -> bool:
        return not self.unresolved and all(v.complete for v in self.visits)

    def lines(self) -> list[tuple[str, str]]:
        """(English, Chinese) lines for the desk; no personal data."""
        out = [r.text() for r in self.acted]
        out += [v.summary() for v in self.visits]
        if self.unresolved:
            listed = ", ".join(self.unresolved)
            out.append(
                (
                    f"still unresolved (manual reconciliation or a running desk): {listed}",
                    f"仍未解决（需人工对账或其他前台进程仍在运行）：{listed}",
                )
            )
        return out

    def text(self) -> str:
        head = "恢复 Recovery: " + ("无需处理 nothing to do" if self.empty else "")
        body = [f"  {en}\n  {zh}" for en, zh in self.lines()]
        return "\n".join([head.rstrip(), *body])

    def to_dict(self) -> dict[str, Any]:
        return {
            "resolved": [
                {"msgid": r.msgid, "infno": r.infno, "action": r.action, "state": r.state,
                 "detail": r.detail}
                for r in self.acted
            ],
            "visits_cancelled": [
                {"mdtrt_id": v.mdtrt_id, "steps": list(v.steps), "complete": v.complete}
                for v in self.visits
            ],
            "unresolved": list(self.unresolved),
            "complete": self.complete,
        }  # fmt: skip
