"""The medical front desk: card → 1101 → area case → filing → 2201 … 2207 → receipt.

What a hospital or pharmacy desk does when a patient pays with the social
security card (medical-insurance.md §1.2 outpatient chain, §2.1 medium 03):

1. read the card (SSSE EF05/EF06, PIN if configured, ssse-card.md §1.4, §1.5);
2. 1101 with ``mdtrt_cert_type`` 03, ``mdtrt_cert_no`` = card number and
   ``card_sn`` = card identification code (mandatory cross-province, §1.6);
3. classify local / in-province / cross-province from the *1101* insured area
   (never from the card's region: sscard profile, "Area codes");
4. cross-province: ask the :class:`FilingCheck` (profile, "Cross-province
   filing check"); ``NOT_FILED`` stops here, before anything is registered;
5. 2201 register → 2203 visit → 2204 fee items → 2206 pre-settle (the split);
6. the desk confirms → 2207 settle (a lost reply is resolved by the client,
   §1.5) → :class:`Receipt`.

Nothing is left half-done: if a step after 2201 fails before settlement, the
visit is cancelled (2205 → 2202) and the error says so (:class:`VisitAborted`).
Cancelling a settlement is 2208 → 2205 → 2202 (§1.5, order from HIS code).
"""

from __future__ import annotations

import os
import tomllib
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sscard.applets.ssse import SsseReader
from sscard.cards.privacy import mask_card_number, mask_middle, mask_name, mask_ssn
from sscard.cards.regions import UnknownRegion, region_of
from sscard.errors import ConfigError, SscardError
from sscard.services.insurance import (
    AreaCase,
    CancelRegistrationRequest,
    CancelSettlementRequest,
    ClientConfig,
    DeleteFeesRequest,
    Diagnosis,
    FeeItem,
    FeeUploadRequest,
    FilingCheck,
    FilingStatus,
    InsuInfo,
    InsuranceClient,
    InsuranceError,
    InvalidRequest,
    ManualReconciliationRequired,
    NoFilingCheck,
    OutboxRow,
    OutcomeUnknown,
    PersonInfo,
    PersonInfoRequest,
    PlatformError,
    PlatformFilingCheck,
    PlatformUnreachable,
    ReconcileReport,
    RegisterRequest,
    SetlInfo,
    SettleConfirmRequest,
    Settlement,
    SettleRequest,
    VisitUploadRequest,
    load_fee_items,
    money,
)
from sscard.services.insurance.money import ZERO

if TYPE_CHECKING:
    from sscard.applets.keyprovider import KeyProvider
    from sscard.terminals.connection import Connection

#: SSC as the visit medium (medical-insurance.md §2.1).
CERT_TYPE_SSC = "03"
#: Citizen ID number as the person's certificate (psn_cert_type 01).
PSN_CERT_ID = "01"

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


# --------------------------------------------------------------------------- errors


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


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class CardIdentity:
    """What the desk takes from the card: EF05 card number, card identification code and
    region, EF06 SSN and name (ssse-card.md §1.4, §1.5). Personal fields stay out of repr."""

    card_number: str
    card_id_code: str  # 32 hex: the 1101 card_sn
    region: str  # issuing region (display only: never an insurance area)
    ssn: str = field(repr=False)
    name: str = field(repr=False)
    sex: str = ""
    birth_date: date | None = field(default=None, repr=False)
    expiry_date: date | None = None

    def __post_init__(self) -> None:
        if not self.card_number or len(self.card_id_code) != 32:
            raise InvalidRequest(
                "card number and the 32-hex card identification code are required",
                "须提供卡号与32位卡识别码",
            )
        if not self.ssn:
            raise InvalidRequest("the SSN (EF06) is required", "须提供社会保障号码（EF06）")


def read_identity(
    conn: Connection,
    keys: KeyProvider | None = None,
    *,
    pin: str | None = None,
    today: date | None = None,
) -> CardIdentity:
    """Read EF05/EF06 through :class:`~sscard.applets.ssse.SsseReader` (PIN if given).

    3rd-gen cards need ``keys`` (PSAM or key set) to read EF06 (RKSSSE external
    authentication, ssse-card.md §1.5); with keys the card is also proved genuine
    (internal authentication, §3.4). An expired card is refused.
    """
    day = today or date.today()
    reader = SsseReader(conn, keys, today=lambda: day)
    read = reader.read(verify_pin=pin, authenticate=keys is not None)
    if read.holder is None:
        raise CardNotUsable(
            "holder data (EF06) not readable: a 3rd-generation card needs a PSAM or key set",
            "无法读取持卡人信息（EF06）：三代卡须配置PSAM或密钥",
        )
    issuer = read.issuer
    if read.expired:
        raise CardNotUsable(
            "card expired (EF05 expiry date); use an ID card or the e-voucher",
            "社保卡已过有效期（EF05），请改用身份证或医保电子凭证",
        )
    return CardIdentity(
        card_number=issuer.card_number,
        card_id_code=issuer.card_id_hex,
        region=issuer.region_code,
        ssn=read.holder.ssn,
        name=read.holder.full_name,
        sex=read.holder.sex,
        birth_date=read.holder.birth_date,
        expiry_date=issuer.expiry_date,
    )


@dataclass(frozen=True)
class VisitPlan:
    """One outpatient visit to settle: fee items (2204) and the visit facts (2201/2203).

    Validated before anything is sent: the total must be a valid amount under the
    profile's sanity limit, and all items belong to one charge batch.
    """

    items: tuple[FeeItem, ...]
    med_type: str = "11"
    dept_code: str = ""
    dept_name: str = ""
    atddr_no: str = ""
    dr_name: str = field(default="", repr=False)
    dise_codg: str = ""
    dise_name: str = ""
    main_cond_dscr: str = ""
    ipt_otp_no: str = ""  # hospital outpatient number; "" = generated
    chrg_bchno: str = ""  # charge batch; "" = the items' own, else generated

    def __post_init__(self) -> None:
        if not self.items:
            raise InvalidRequest("no fee items", "无费用明细")
        money(self.total, "medfee_sumamt")
        batches = {i.chrg_bchno for i in self.items if i.chrg_bchno}
        if self.chrg_bchno:
            batches.add(self.chrg_bchno)
        if len(batches) > 1:
            raise InvalidRequest(
                "one settlement takes one charge batch (chrg_bchno); split the file",
                "一次结算只能包含一个收费批次（chrg_bchno），请拆分文件",
            )

    @property
    def total(self) -> Decimal:
        return sum((i.det_item_fee_sumamt for i in self.items), ZERO)

    @property
    def batch(self) -> str:
        own = next((i.chrg_bchno for i in self.items if i.chrg_bchno), "")
        return self.chrg_bchno or own

    @classmethod
    def from_file(cls, path: str | Path, **facts: Any) -> VisitPlan:
        """Fee items from a CSV or JSON file (:func:`load_fee_items`, line/column errors)."""
        return cls(tuple(load_fee_items(path)), **facts)


# --------------------------------------------------------------------------- results


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


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _row(zh: str, en: str, value: str) -> str:
    label = f"{zh} {en}"
    return f"{label}{' ' * max(1, _LABEL_WIDTH - _width(label))}: {value}"


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


# --------------------------------------------------------------------------- the desk

Confirm = Callable[[PreSettlement], bool]


class FrontDesk:
    """The outpatient settlement flow over an :class:`InsuranceClient`.

    ``filing_check``: the profile's adapter (default :class:`NoFilingCheck`, i.e.
    ``UNKNOWN``: the desk confirms by hand, the platform still refuses an unfiled
    visit). ``acct_used_flag`` / ``psn_setlway``: profile defaults ``0`` / ``01``.
    ``insutype`` "" takes the person's first insurance from 1101.
    """

    def __init__(
        self,
        client: InsuranceClient,
        *,
        filing_check: FilingCheck | None = None,
        mdtrtarea_admvs: str | None = None,
        insutype: str = "",
        acct_used_flag: str = "0",
        psn_setlway: str = "01",
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        area = mdtrtarea_admvs or client.config.mdtrtarea_admvs
        if area != client.config.mdtrtarea_admvs:
            raise ConfigError(
                f"treatment area {area} differs from the client's {client.config.mdtrtarea_admvs}",
                "就医地医保区划与客户端配置不一致",
            )
        self.client = client
        self.filing_check: FilingCheck = filing_check or NoFilingCheck()
        self.mdtrtarea_admvs = area
        self.insutype = insutype
        self.acct_used_flag = acct_used_flag
        self.psn_setlway = psn_setlway
        self.clock = clock

    # -- steps -------------------------------------------------------------

    def identify(self, card: CardIdentity, *, med_type: str = "11") -> Patient:
        """1101 by card (type 03, card_sn), area case from its insured area, filing check."""
        person = self.client.person_info(
            PersonInfoRequest(
                CERT_TYPE_SSC,
                card.card_number,
                card_sn=card.card_id_code,
                psn_cert_type=PSN_CERT_ID,
                certno=card.ssn,
                psn_name=card.name,
            )
        )
        insurance = person.insurance(self.insutype or None)
        case = AreaCase.of(insurance.insuplc_admdvs, self.mdtrtarea_admvs)
        filing = None
        if case is AreaCase.CROSS_PROVINCE:
            filing = self.filing_check.check(
                person.psn_no,
                insurance.insuplc_admdvs,
                self.mdtrtarea_admvs,
                med_type,
                self._now(),
            )
        return Patient(card, person, insurance, self.mdtrtarea_admvs, case, filing)

    def register(self, patient: Patient, visit: VisitPlan) -> Registration:
        """2201. A lost reply is resolved at once (2601 of the 2201, profile) so no
        registration is left behind unknown."""
        if patient.filing is FilingStatus.NOT_FILED:
            raise FilingRequired(patient.insuplc_admdvs, patient.mdtrtarea_admvs, visit.med_type)
        begntime = self._now()
        otp = visit.ipt_otp_no or f"MZ{self.clock():%Y%m%d%H%M%S}{uuid.uuid4().hex[:6].upper()}"
        request = RegisterRequest(
            psn_no=patient.psn_no,
            insutype=patient.insurance.insutype,
            insuplc_admdvs=patient.insuplc_admdvs,
            begntime=begntime,
            mdtrt_cert_type=CERT_TYPE_SSC,
            mdtrt_cert_no=patient.card.card_number,
            ipt_otp_no=otp,
            atddr_no=visit.atddr_no,
            dr_name=visit.dr_name,
            dept_code=visit.dept_code,
            dept_name=visit.dept_name,
            card_sn=patient.card.card_id_code,
            psn_cert_type=PSN_CERT_ID,
            certno=patient.card.ssn,
        )
        try:
            result = self.client.register(request)
        except PlatformUnreachable:
            raise  # nothing sent
        except OutcomeUnknown as exc:
            resolution = self.client.resolve(exc.msgid)  # 2601 of the 2201
            if resolution.action != "reversed":
                raise ManualReconciliationRequired(exc.msgid, "2201", resolution.detail) from exc
            raise VisitAborted("2201", exc, Cleanup("", ("2601",))) from exc
        batch = visit.batch or f"{self.clock():%H%M%S}01"
        return Registration(result.mdtrt_id, otp, batch, begntime, result.msgid)

    def pre_settle(self, patient: Patient, reg: Registration, visit: VisitPlan) -> PreSettlement:
        """2203 visit, 2204 fee items, 2206 pre-settlement."""
        self.client.upload_visit(
            VisitUploadRequest(
                mdtrt_id=reg.mdtrt_id,
                psn_no=patient.psn_no,
                insuplc_admdvs=patient.insuplc_admdvs,
                med_type=visit.med_type,
                begntime=reg.begntime,
                main_cond_dscr=visit.main_cond_dscr,
                dise_codg=visit.dise_codg,
                dise_name=visit.dise_name,
                diseinfo=self._diagnoses(visit, reg),
            )
        )
        self.client.upload_fees(
            FeeUploadRequest(
                reg.mdtrt_id,
                patient.psn_no,
                patient.insuplc_admdvs,
                reg.chrg_bchno,
                reg.begntime,
                visit.items,
            )
        )
        request = SettleRequest(
            psn_no=patient.psn_no,
            insuplc_admdvs=patient.insuplc_admdvs,
            mdtrt_cert_type=CERT_TYPE_SSC,
            mdtrt_cert_no=patient.card.card_number,
            med_type=visit.med_type,
            medfee_sumamt=visit.total,
            mdtrt_id=reg.mdtrt_id,
            chrg_bchno=reg.chrg_bchno,
            insutype=patient.insurance.insutype,
            psn_setlway=self.psn_setlway,
            acct_used_flag=self.acct_used_flag,
        )
        return PreSettlement(patient, reg, visit, request, self.client.pre_settle(request))

    def confirm(self, pre: PreSettlement) -> Receipt:
        """2207 for a confirmed 2206; a lost reply is resolved by the client (§1.5)."""
        invono = f"INV{pre.registration.ipt_otp_no}"
        settlement = self.client.settle(
            SettleConfirmRequest.from_pre(pre.request, pre.settlement, invono)
        )
        config = self.client.config
        return Receipt(
            config.fixmedins_code,
            config.fixmedins_name,
            pre.patient,
            pre.registration,
            pre.visit,
            settlement,
        )

    def abort(self, patient: Patient, reg: Registration, *, fees: bool = True) -> Cleanup:
        """Undo an unsettled visit: 2205 (all unsettled details) then 2202."""
        steps: list[str] = []
        try:
            if fees:
                self.client.delete_fees(
                    DeleteFeesRequest(reg.mdtrt_id, patient.psn_no, patient.insuplc_admdvs)
                )
                steps.append("2205")
            self.client.cancel_registration(
                CancelRegistrationRequest(
                    patient.psn_no, reg.mdtrt_id, reg.ipt_otp_no, patient.insuplc_admdvs
                )
            )
            steps.append("2202")
        except InsuranceError as exc:
            return Cleanup(reg.mdtrt_id, tuple(steps), exc.message_en, exc.message_zh)
        return Cleanup(reg.mdtrt_id, tuple(steps))

    # -- the whole flow ----------------------------------------------------

    def settle(self, card: CardIdentity, visit: VisitPlan, *, confirm: Confirm) -> Receipt:
        """Identify, register, upload, pre-settle, ask ``confirm``, settle.

        Raises :class:`FilingRequired` (nothing registered), :class:`VisitAborted`
        (a step after 2201 failed; the visit was cancelled, or the error says how
        to finish), :class:`ManualReconciliationRequired` (2207 outcome unknown;
        visit kept for the day-end reconciliation), or the client's errors before 2201.
        """
        patient = self.identify(card, med_type=visit.med_type)
        reg = self.register(patient, visit)
        try:
            pre = self.pre_settle(patient, reg, visit)
            try:
                accepted = confirm(pre)
            except BaseException:
                self.abort(patient, reg)
                raise
            if not accepted:
                raise SettlementDeclined(self.abort(patient, reg))
            return self.confirm(pre)
        except (SettlementDeclined, ManualReconciliationRequired):
            raise
        except InsuranceError as exc:
            cleanup = self.abort(patient, reg)
            raise VisitAborted(self._failed_infno(exc), exc, cleanup) from exc

    # -- cancellation ------------------------------------------------------

    def cancel(self, setl_id: str) -> Cancellation:
        """2208 → 2205 → 2202 for a settlement made through this outbox."""
        settled = self._find("2207", lambda r: r.setl_id == setl_id)
        if settled is None:
            raise InvalidRequest(
                f"settlement {setl_id} is not in this desk's outbox",
                f"本机交易日志中无结算 {setl_id}",
            )
        data = settled.request_input.get("data") or {}
        mdtrt_id = str(data.get("mdtrt_id") or "")
        reversal = self.client.cancel_settlement(
            CancelSettlementRequest(setl_id, mdtrt_id, settled.psn_no, settled.insuplc_admdvs)
        )
        cleanup = self._cancel_visit(mdtrt_id)
        if not cleanup.complete:
            raise CancelIncomplete(setl_id, cleanup)
        return Cancellation(setl_id, mdtrt_id, reversal, ("2208", *cleanup.steps))

    def cancel_visit(self, mdtrt_id: str) -> Cleanup:
        """2205 → 2202 for a registered, unsettled visit (after a failed clean-up)."""
        cleanup = self._cancel_visit(mdtrt_id)
        if not cleanup.complete:
            en, zh = cleanup.summary()
            raise InsuranceError(en, zh)
        return cleanup

    def reconcile(self, day: date) -> ReconcileReport:
        """Day-end: resolve unknown rows, then compare with the platform's 3201 totals."""
        return self.client.reconcile(day)

    # -- helpers -----------------------------------------------------------

    def _cancel_visit(self, mdtrt_id: str) -> Cleanup:
        reg_row = self._find("2201", lambda r: _reply_data(r).get("mdtrt_id") == mdtrt_id)
        if reg_row is None:
            raise InvalidRequest(
                f"visit {mdtrt_id} is not in this desk's outbox", f"本机交易日志中无就诊 {mdtrt_id}"
            )
        steps: list[str] = []
        data = reg_row.request_input.get("data") or {}
        psn_no, area = reg_row.psn_no, reg_row.insuplc_admdvs
        try:
            self.client.delete_fees(DeleteFeesRequest(mdtrt_id, psn_no, area))
            steps.append("2205")
            otp = str(data.get("ipt_otp_no") or "")
            self.client.cancel_registration(CancelRegistrationRequest(psn_no, mdtrt_id, otp, area))
            steps.append("2202")
        except InsuranceError as exc:
            return Cleanup(mdtrt_id, tuple(steps), exc.message_en, exc.message_zh)
        return Cleanup(mdtrt_id, tuple(steps))

    def _find(self, infno: str, match: Callable[[OutboxRow], bool]) -> OutboxRow | None:
        rows = self.client.outbox.rows(infno=infno, states=("done",))
        return next((r for r in reversed(rows) if match(r)), None)

    def _failed_infno(self, exc: InsuranceError) -> str:
        """The transaction that failed, for the message (from the error or its outbox row)."""
        if isinstance(exc, OutcomeUnknown):
            return exc.infno
        msgid = getattr(exc, "msgid", "")
        if msgid:
            try:
                return self.client.outbox.get(msgid).infno
            except InsuranceError:
                pass
        return "visit"

    def _now(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    def _diagnoses(self, visit: VisitPlan, reg: Registration) -> tuple[Diagnosis, ...]:
        if not visit.dise_codg:
            return ()
        return (
            Diagnosis(
                "1", "1", visit.dise_codg, visit.dise_name, visit.dept_name, diag_time=reg.begntime
            ),
        )


def _reply_data(row: OutboxRow) -> Mapping[str, Any]:
    output = (row.response or {}).get("output") or {}
    data = output.get("data") if isinstance(output, dict) else None
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class DeskConfig:
    """The desk's configuration file (``examples/medical.toml``).

    ``[platform] url, timeout``; ``[institution] fixmedins_code, fixmedins_name,
    mdtrtarea_admvs``; ``[desk] operator, operator_name, outbox, dept_code,
    dept_name, med_type, insutype, acct_used_flag, psn_setlway, filing_check
    ("platform" | "none"), pin_required``. Env ``SSCARD_INSURANCE_URL`` overrides
    the URL. A relative outbox path is taken from the current directory.
    """

    url: str
    fixmedins_code: str = "H31010400001"
    fixmedins_name: str = "sscard test clinic"
    mdtrtarea_admvs: str = "310000"
    outbox: Path = Path("medical-outbox.db")
    operator: str = "0001"
    operator_name: str = "front desk"
    dept_code: str = ""
    dept_name: str = ""
    med_type: str = "11"
    insutype: str = ""
    acct_used_flag: str = "0"
    psn_setlway: str = "01"
    filing_check: str = "platform"
    pin_required: bool = False
    timeout: float = 15.0

    @classmethod
    def load(cls, path: str | Path | None, *, env: Mapping[str, str] = os.environ) -> DeskConfig:
        """Read ``path`` (None: defaults only); the URL must come from it or the env."""
        values: dict[str, Any] = {}
        if path is not None:
            name = Path(path).name
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {name}: {exc.strerror}", f"无法读取配置文件 {name}"
                ) from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{name}: {exc}", f"{name} 不是有效的 TOML") from None
            except UnicodeDecodeError:
                raise ConfigError(f"{name} is not UTF-8 text", f"{name} 不是 UTF-8 文本") from None
            values = _flatten(data, name)
        if env.get("SSCARD_INSURANCE_URL"):
            values["url"] = env["SSCARD_INSURANCE_URL"]
        if not values.get("url"):
            raise ConfigError(
                "no platform URL: give --config FILE or set SSCARD_INSURANCE_URL",
                "未配置医保平台地址：请用 --config 指定配置文件或设置 SSCARD_INSURANCE_URL",
            )
        if "outbox" in values:
            values["outbox"] = Path(str(values["outbox"]))
        try:
            config = cls(**values)
        except TypeError as exc:
            raise ConfigError(f"configuration: {exc}", "配置项错误") from None
        if config.filing_check not in ("platform", "none"):
            raise ConfigError(
                "filing_check must be 'platform' or 'none'", "filing_check 须为 platform 或 none"
            )
        return config

    def client_config(self) -> ClientConfig:
        return ClientConfig(
            self.url,
            self.fixmedins_code,
            self.fixmedins_name,
            self.mdtrtarea_admvs,
            opter=self.operator,
            opter_name=self.operator_name,
            timeout=self.timeout,
        )

    def open_client(self) -> InsuranceClient:
        return InsuranceClient(self.client_config(), self.outbox)

    def front_desk(self, client: InsuranceClient) -> FrontDesk:
        check = PlatformFilingCheck(client) if self.filing_check == "platform" else None
        return FrontDesk(
            client,
            filing_check=check,
            insutype=self.insutype,
            acct_used_flag=self.acct_used_flag,
            psn_setlway=self.psn_setlway,
        )


_KEYS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "platform": {"url": str, "timeout": (int, float)},
    "institution": {"fixmedins_code": str, "fixmedins_name": str, "mdtrtarea_admvs": str},
    "desk": {
        "operator": str,
        "operator_name": str,
        "outbox": str,
        "dept_code": str,
        "dept_name": str,
        "med_type": str,
        "insutype": str,
        "acct_used_flag": str,
        "psn_setlway": str,
        "filing_check": str,
        "pin_required": bool,
    },
}


def _flatten(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Check sections, keys and types (a typo must not be dropped silently)."""
    out: dict[str, Any] = {}
    for section, values in data.items():
        known = _KEYS.get(section)
        if known is None or not isinstance(values, dict):
            raise ConfigError(
                f"{name}: unknown section [{section}]", f"{name}：未知配置节 [{section}]"
            )
        for key, value in values.items():
            kind = known.get(key)
            if kind is None:
                raise ConfigError(
                    f"{name}: unknown key {section}.{key}", f"{name}：未知配置项 {section}.{key}"
                )
            if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
                raise ConfigError(
                    f"{name}: {section}.{key} has the wrong type",
                    f"{name}：{section}.{key} 类型错误",
                )
            out[key] = (
                float(value) if key == "timeout" and isinstance(value, int | float) else value
            )
    return out
