"""Typed requests and results of the platform transactions.

Field names are the platform's own (§M1.2, §M1.3), so a
reader can hold this file next to the interface specification. Requests
validate themselves when built (amounts via :func:`money`), so nothing
malformed reaches the outbox. Personal data (certno, names) is kept out of
reprs.

Replies are read in the shape real HIS code reads them (§M1.7): 2206/2207
``setlinfo`` with the person, 2208's cash as ``pdn_cash_pay`` (the spec's
spelling) or ``psn_cash_pay``, 2204 ``result[]`` with 19 fields, 3201
``stmtinfo``. A request whose ``input`` would exceed 40,000 characters is refused
before it is written (:data:`MAX_INPUT_CHARS`); fee uploads are split instead
(:func:`split_fee_upload`).

sscard profile transactions (not in the public catalogue, §M7):
``5261`` settlement query by ``medins_setl_id`` (= the 2207 msgid) and
``2599`` cross-province filing check; both are side-effect free.

Each request class says once whether it changes anything on the platform
(:attr:`Request.side_effects`); the client's retry policy and the recovery's
"drop or reconcile" choice both read that one attribute (:func:`side_effect_free`).
Each also reads its own reply (:meth:`Request.result`), so
``InsuranceClient.send(request)`` returns the typed result.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypeVar

from sscard.services.insurance.errors import InsuranceError, InvalidAmount, InvalidRequest
from sscard.services.insurance.money import (
    CENT,
    ZERO,
    dumps,
    money,
    quantity,
    wire_money,
    wire_quantity,
    wire_ratio,
)

#: Reversible transactions for 2601 (sscard profile, "Reversible transactions").
REVERSIBLE_INFNOS: frozenset[str] = frozenset({"2201", "2207", "2304"})
#: sscard profile query numbers (see module docstring).
SETTLEMENT_QUERY_INFNO = "5261"
FILING_CHECK_INFNO = "2599"
#: ``input`` is at most 40,000 characters (§M1.1, §M1.7); the platform refuses more.
MAX_INPUT_CHARS = 40_000
#: Wire fields with more than two decimal places (cnt 16,4; pric 16,6).
_QUANTITIES = frozenset({"cnt", "pric", "pric_uplmt_amt"})

R = TypeVar("R")


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value)


def _fill(cls: type[Any], data: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for the scalar fields of ``cls`` taken from ``data``."""
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.type not in ("str", "Decimal", "int"):
            continue
        if f.type == "Decimal":
            value = data.get(f.name)
            if f.name in _QUANTITIES:
                kwargs[f.name] = wire_quantity(value)
            elif f.name.endswith("_prop") or f.name.endswith("prop_selfpay"):
                kwargs[f.name] = wire_ratio(value)
            else:
                kwargs[f.name] = wire_money(value)
        elif f.type == "int":
            kwargs[f.name] = int(data.get(f.name) or 0)
        else:
            kwargs[f.name] = _text(data, f.name)
    return kwargs


def _require(value: str, name: str) -> str:
    if not value:
        raise InvalidRequest(f"{name} is required", f"{name} 不能为空")
    return value


def _body(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        f.name: getattr(obj, f.name)
        for f in dataclasses.fields(obj)
        if f.name not in skip and f.name != "insuplc_admdvs"
    }


class Request(Generic[R]):
    """What the client needs from every request object: its transaction number,
    whether it has side effects, its ``input`` body and how to read its reply."""

    infno: ClassVar[str]
    #: Does the platform change anything when it applies this request? The one
    #: source of the retry policy: a request without side effects is retried after
    #: a lost reply and, if still unanswered, dropped (``failed``); one with side
    #: effects is sent once and, without a reply, left ``unknown`` for the
    #: reconciliation (query, 2601, or a resend under the same msgid). Retries and
    #: resends keep the msgid, which the platform answers with its first reply
    #: (§M1.5), so even a repeat of a query changes nothing.
    side_effects: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        infno = cls.__dict__.get("infno")
        if infno is not None:  # one class per transaction number: one answer per infno
            known = _REQUESTS.setdefault(infno, cls)
            if known is not cls:
                raise TypeError(f"{infno} is already {known.__name__}")

    @property
    def route_admdvs(self) -> str:
        """``insuplc_admdvs`` for the envelope; mandatory when a psn_no is sent (§M1.1)."""
        return str(getattr(self, "insuplc_admdvs", ""))

    @property
    def person(self) -> str:
        return str(getattr(self, "psn_no", ""))

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def result(self, msgid: str, output: dict[str, Any]) -> R:
        """The typed result of an ``infcode`` 0 reply's ``output``; ValueError,
        TypeError or KeyError if it cannot be read (the client then treats the
        outcome as unknown: the platform may have applied the request)."""
        raise NotImplementedError

    def check_size(self) -> None:
        """Refuse a body the platform would refuse (over :data:`MAX_INPUT_CHARS`)."""
        size = len(dumps(self.body()))
        if size > MAX_INPUT_CHARS:
            raise InvalidRequest(
                f"{self.infno} input is {size:,} characters; the platform takes at most "
                f"{MAX_INPUT_CHARS:,}",
                f"交易 {self.infno} 输入为 {size} 字符，平台最多接受 {MAX_INPUT_CHARS} 字符",
            )


#: The request class of every transaction number (filled by ``Request.__init_subclass__``).
_REQUESTS: dict[str, type[Request[Any]]] = {}


def request_types() -> dict[str, type[Request[Any]]]:
    """Every transaction this client sends, by infno (a copy)."""
    return dict(_REQUESTS)


def side_effect_free(infno: str) -> bool:
    """Is a journalled ``infno`` free of side effects (:attr:`Request.side_effects`)?

    An infno without a request class (a row written by another program) counts as
    having side effects: the careful answer.
    """
    cls = _REQUESTS.get(infno)
    return cls is not None and not cls.side_effects


def _checked(value: str, name: str) -> None:
    if not value:
        raise ValueError(f"reply without {name}")


# --- 9001 sign-in -----------------------------------------------------------


@dataclass(frozen=True)
class SignInRequest(Request["SignInResult"]):
    infno: ClassVar[str] = "9001"
    side_effects: ClassVar[bool] = False  # a repeated sign-in only issues a new sign_no
    opter_no: str
    mac: str = ""
    ip: str = ""

    def body(self) -> dict[str, Any]:
        return {"signIn": {"opter_no": self.opter_no, "mac": self.mac, "ip": self.ip}}

    def result(self, msgid: str, output: dict[str, Any]) -> SignInResult:
        result = SignInResult.from_output(output)
        _checked(result.sign_no, "sign_no")
        return result


@dataclass(frozen=True)
class SignInResult:
    sign_time: str
    sign_no: str

    @classmethod
    def from_output(cls, output: dict[str, Any]) -> SignInResult:
        inner = output.get("signinoutb") or {}
        return cls(sign_time=_text(inner, "sign_time"), sign_no=_text(inner, "sign_no"))


# --- 1101 person info -------------------------------------------------------


@dataclass(frozen=True)
class PersonInfoRequest(Request["PersonInfo"]):
    """1101. ``mdtrt_cert_type`` 01 e-voucher, 02 ID card, 03 SSC (§M2.1). A query."""

    infno: ClassVar[str] = "1101"
    side_effects: ClassVar[bool] = False
    mdtrt_cert_type: str
    mdtrt_cert_no: str = field(repr=False)
    card_sn: str = field(default="", repr=False)
    psn_cert_type: str = "01"
    certno: str = field(default="", repr=False)
    psn_name: str = field(default="", repr=False)
    begntime: str = ""

    def __post_init__(self) -> None:
        _require(self.mdtrt_cert_no, "mdtrt_cert_no")
        if self.mdtrt_cert_type == "03" and not self.card_sn:
            raise InvalidRequest(
                "card_sn is required for an SSC (type 03)", "社保卡就诊须提供 card_sn"
            )

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> PersonInfo:
        info = PersonInfo.from_output(output, msgid)
        _checked(info.psn_no, "psn_no")
        return info


@dataclass(frozen=True)
class InsuInfo:
    balc: Decimal
    insutype: str
    psn_type: str
    psn_insu_stas: str
    psn_insu_date: str
    paus_insu_date: str
    cvlserv_flag: str
    insuplc_admdvs: str
    emp_name: str = field(repr=False)


@dataclass(frozen=True)
class PersonInfo:
    psn_no: str
    psn_cert_type: str
    certno: str = field(repr=False)
    psn_name: str = field(repr=False)
    gend: str = ""
    naty: str = ""
    brdy: str = field(default="", repr=False)
    age: str = ""
    insuinfo: tuple[InsuInfo, ...] = ()
    msgid: str = ""  # the 1101 that returned it

    @property
    def insuplc_admdvs(self) -> str:
        """Insured area of the first insurance (profile: take admdvs from 1101 only)."""
        return self.insuinfo[0].insuplc_admdvs if self.insuinfo else ""

    def insurance(self, insutype: str | None = None) -> InsuInfo:
        for info in self.insuinfo:
            if insutype is None or info.insutype == insutype:
                return info
        raise InvalidRequest(f"person has no insurance {insutype}", f"参保人无险种 {insutype}")

    @classmethod
    def from_output(cls, output: dict[str, Any], msgid: str = "") -> PersonInfo:
        base = output.get("baseinfo") or {}
        infos = tuple(InsuInfo(**_fill(InsuInfo, i)) for i in output.get("insuinfo") or ())
        fields = _fill(cls, base)
        fields.pop("msgid", None)
        return cls(**fields, insuinfo=infos, msgid=msgid)


# --- 2201 / 2202 registration ----------------------------------------------


@dataclass(frozen=True)
class RegisterRequest(Request["RegisterResult"]):
    infno: ClassVar[str] = "2201"
    psn_no: str
    insutype: str
    insuplc_admdvs: str
    begntime: str
    mdtrt_cert_type: str
    mdtrt_cert_no: str = field(repr=False)
    ipt_otp_no: str
    atddr_no: str = ""
    dr_name: str = field(default="", repr=False)
    dept_code: str = ""
    dept_name: str = ""
    caty: str = ""
    card_sn: str = field(default="", repr=False)
    psn_cert_type: str = ""
    certno: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        for name in ("psn_no", "insutype", "insuplc_admdvs", "begntime", "ipt_otp_no"):
            _require(getattr(self, name), name)

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> RegisterResult:
        return RegisterResult.from_output(msgid, output)


@dataclass(frozen=True)
class RegisterResult:
    """``mdtrt_id`` identifies the visit; ``msgid`` is kept for a 2601 of the 2201."""

    mdtrt_id: str
    psn_no: str
    ipt_otp_no: str
    msgid: str = ""

    @classmethod
    def from_output(cls, msgid: str, output: dict[str, Any]) -> RegisterResult:
        fields = _fill(cls, output.get("data") or {})
        fields["msgid"] = msgid
        result = cls(**fields)
        if not result.mdtrt_id:
            raise ValueError("2201 reply without mdtrt_id")
        return result


@dataclass(frozen=True)
class CancelRegistrationRequest(Request[None]):
    infno: ClassVar[str] = "2202"
    psn_no: str
    mdtrt_id: str
    ipt_otp_no: str
    insuplc_admdvs: str

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> None:
        return None


# --- 2203 visit, 2204 / 2205 fee details -----------------------------------


@dataclass(frozen=True)
class Diagnosis:
    diag_type: str
    diag_srt_no: str
    diag_code: str
    diag_name: str
    diag_dept: str = ""
    dise_dor_no: str = ""
    dise_dor_name: str = field(default="", repr=False)
    diag_time: str = ""
    vali_flag: str = "1"


@dataclass(frozen=True)
class VisitUploadRequest(Request[None]):
    infno: ClassVar[str] = "2203"
    mdtrt_id: str
    psn_no: str
    insuplc_admdvs: str
    med_type: str
    begntime: str
    main_cond_dscr: str = ""
    dise_codg: str = ""
    dise_name: str = ""
    diseinfo: tuple[Diagnosis, ...] = ()

    def body(self) -> dict[str, Any]:
        info = _body(self, skip=("diseinfo",))
        return {"mdtrtinfo": info, "diseinfo": [dataclasses.asdict(d) for d in self.diseinfo]}

    def result(self, msgid: str, output: dict[str, Any]) -> None:
        return None


@dataclass(frozen=True)
class FeeItem:
    """One line of a visit's fee detail (2204 ``feedetail[]``), see fees.py for files."""

    feedetl_sn: str
    med_list_codg: str
    medins_list_codg: str
    det_item_fee_sumamt: Decimal
    cnt: Decimal
    pric: Decimal
    medins_list_name: str = ""
    fee_ocur_time: str = ""
    chrg_bchno: str = ""
    rxno: str = ""
    rx_circ_flag: str = "0"
    bilg_dept_codg: str = ""
    bilg_dept_name: str = ""
    bilg_dr_codg: str = ""
    bilg_dr_name: str = field(default="", repr=False)
    hosp_appr_flag: str = "1"

    def __post_init__(self) -> None:
        _require(self.feedetl_sn, "feedetl_sn")
        _require(self.med_list_codg, "med_list_codg")
        _require(self.medins_list_codg, "medins_list_codg")
        cnt = quantity(self.cnt, "cnt", positive=True)
        pric = quantity(self.pric, "pric")
        total = money(self.det_item_fee_sumamt, "det_item_fee_sumamt")
        if abs(cnt * pric - total) > CENT:
            raise InvalidAmount(
                "det_item_fee_sumamt",
                f"{total} is not cnt × pric ({cnt} × {pric})",
                "不等于数量×单价",
            )
        object.__setattr__(self, "det_item_fee_sumamt", total)
        object.__setattr__(self, "cnt", cnt)
        object.__setattr__(self, "pric", pric)


@dataclass(frozen=True)
class FeeUploadRequest(Request["tuple[FeeDetailResult, ...]"]):
    """2204. Items without chrg_bchno / fee_ocur_time take the request's values."""

    infno: ClassVar[str] = "2204"
    mdtrt_id: str
    psn_no: str
    insuplc_admdvs: str
    chrg_bchno: str
    fee_ocur_time: str
    items: tuple[FeeItem, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise InvalidRequest("no fee items", "无费用明细")
        sns = [i.feedetl_sn for i in self.items]
        if len(set(sns)) != len(sns):
            raise InvalidRequest("feedetl_sn repeated in the upload", "费用明细流水号重复")

    @property
    def total(self) -> Decimal:
        return sum((i.det_item_fee_sumamt for i in self.items), ZERO)

    def body(self) -> dict[str, Any]:
        rows = []
        for item in self.items:
            row = dataclasses.asdict(item)
            row.pop("medins_list_name")
            row["chrg_bchno"] = item.chrg_bchno or self.chrg_bchno
            row["fee_ocur_time"] = item.fee_ocur_time or self.fee_ocur_time
            row.update(mdtrt_id=self.mdtrt_id, psn_no=self.psn_no)
            rows.append(row)
        return {"feedetail": rows}

    def result(self, msgid: str, output: dict[str, Any]) -> tuple[FeeDetailResult, ...]:
        """The platform's classification of each item (2204 ``result[]``)."""
        return fee_results(output)


def split_fee_upload(request: FeeUploadRequest) -> list[FeeUploadRequest]:
    """The upload as few 2204s as keep each ``input`` under :data:`MAX_INPUT_CHARS`.

    A visit with hundreds of lines (an Excel export) is sent in batches, as HIS
    code does; the items keep their order and their ``feedetl_sn``.
    """
    rows = request.body()["feedetail"]
    budget = MAX_INPUT_CHARS - len('{"feedetail":[]}')
    chunks: list[list[FeeItem]] = [[]]
    used = 0
    for item, row in zip(request.items, rows, strict=True):
        size = len(dumps(row)) + 1
        if chunks[-1] and used + size > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(item)
        used += size
    return [dataclasses.replace(request, items=tuple(chunk)) for chunk in chunks]


@dataclass(frozen=True)
class FeeDetailResult:
    """One 2204 ``result[]`` row: its 19 fields (§M1.7)."""

    feedetl_sn: str
    det_item_fee_sumamt: Decimal
    pric_uplmt_amt: Decimal
    selfpay_prop: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_amt: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    cnt: Decimal = ZERO
    pric: Decimal = ZERO
    chrgitm_lv: str = ""
    med_chrgitm_type: str = ""
    lmt_used_flag: str = ""
    bas_medn_flag: str = ""
    hi_nego_drug_flag: str = ""
    chld_medc_flag: str = ""
    list_sp_item_flag: str = ""
    drt_reim_flag: str = ""
    memo: str = ""


def fee_results(output: dict[str, Any]) -> tuple[FeeDetailResult, ...]:
    return tuple(FeeDetailResult(**_fill(FeeDetailResult, r)) for r in output.get("result") or ())


@dataclass(frozen=True)
class DeleteFeesRequest(Request[None]):
    """2205; ``chrg_bchno="0000"`` deletes every unsettled detail of the visit (§M1.5)."""

    infno: ClassVar[str] = "2205"
    mdtrt_id: str
    psn_no: str
    insuplc_admdvs: str
    chrg_bchno: str = "0000"

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> None:
        return None


# --- 2206 / 2207 / 2208 settlement -----------------------------------------


@dataclass(frozen=True)
class SettleRequest(Request["Settlement"]):
    """2206 pre-settlement; :class:`SettleConfirmRequest` is the 2207 variant.

    ``psn_setlway`` 01 and ``acct_used_flag`` 0 are the profile defaults. A 2206 is
    a trial calculation (预结算): the platform computes the split and records nothing
    (no ``setl_id``, §M1.2), so it has no side effects; the 2207 that confirms it has.
    """

    infno: ClassVar[str] = "2206"
    side_effects: ClassVar[bool] = False
    psn_no: str
    insuplc_admdvs: str
    mdtrt_cert_type: str
    mdtrt_cert_no: str = field(repr=False)
    med_type: str
    medfee_sumamt: Decimal
    mdtrt_id: str
    chrg_bchno: str
    insutype: str
    psn_setlway: str = "01"
    acct_used_flag: str = "0"

    def __post_init__(self) -> None:
        object.__setattr__(self, "medfee_sumamt", money(self.medfee_sumamt, "medfee_sumamt"))
        for name in ("psn_no", "insuplc_admdvs", "mdtrt_id", "med_type", "insutype"):
            _require(getattr(self, name), name)
        if self.acct_used_flag not in ("0", "1"):
            raise InvalidRequest("acct_used_flag must be 0 or 1", "acct_used_flag 只能为 0 或 1")

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> Settlement:
        return Settlement.from_output(msgid, output)


@dataclass(frozen=True)
class SettleConfirmRequest(SettleRequest):
    """2207: the 2206 fields plus the invoice and the 2206 totals (§M1.2). It settles:
    side effects (money moves, the year's deductible and fund usage change)."""

    infno: ClassVar[str] = "2207"
    side_effects: ClassVar[bool] = True
    invono: str = ""
    fulamt_ownpay_amt: Decimal = ZERO
    overlmt_selfpay: Decimal = ZERO
    preselfpay_amt: Decimal = ZERO
    inscp_scp_amt: Decimal = ZERO

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt"):
            object.__setattr__(self, name, money(getattr(self, name), name))

    def result(self, msgid: str, output: dict[str, Any]) -> Settlement:
        """A 2207 reply must carry ``setl_id`` and echo our msgid as ``medins_setl_id``
        (§M1.5): a reply for another msgid is no answer to this one."""
        result = Settlement.from_output(msgid, output)
        if not result.setlinfo.setl_id:
            raise ValueError("2207 reply without setl_id")
        if result.setlinfo.medins_setl_id != msgid:
            raise ValueError("2207 reply for another msgid")
        return result

    @classmethod
    def from_pre(
        cls, pre: SettleRequest, result: Settlement, invono: str = ""
    ) -> SettleConfirmRequest:
        """The 2207 that confirms a 2206 (same visit, totals from its answer)."""
        fields = {f.name: getattr(pre, f.name) for f in dataclasses.fields(SettleRequest)}
        info = result.setlinfo
        return cls(
            **fields,
            invono=invono,
            fulamt_ownpay_amt=info.fulamt_ownpay_amt,
            overlmt_selfpay=info.overlmt_selfpay,
            preselfpay_amt=info.preselfpay_amt,
            inscp_scp_amt=info.inscp_scp_amt,
        )


@dataclass(frozen=True)
class SetlInfo:
    """``setlinfo`` of 2206/2207/2208 (§M1.3). Amounts exactly as returned."""

    setl_id: str
    mdtrt_id: str
    psn_no: str
    medins_setl_id: str
    insutype: str
    med_type: str
    setl_time: str
    medfee_sumamt: Decimal
    fulamt_ownpay_amt: Decimal
    overlmt_selfpay: Decimal
    preselfpay_amt: Decimal
    inscp_scp_amt: Decimal
    act_pay_dedc: Decimal
    hifp_pay: Decimal
    pool_prop_selfpay: Decimal
    cvlserv_pay: Decimal
    hifes_pay: Decimal
    hifmi_pay: Decimal
    hifob_pay: Decimal
    maf_pay: Decimal
    oth_pay: Decimal
    fund_pay_sumamt: Decimal
    psn_part_amt: Decimal
    acct_pay: Decimal
    psn_cash_pay: Decimal
    hosp_part_amt: Decimal
    balc: Decimal
    acct_mulaid_pay: Decimal
    clr_optins: str = ""
    clr_way: str = ""
    clr_type: str = ""
    # The person, as 2206/2207 return it (§M1.7); kept out of reprs.
    psn_name: str = field(default="", repr=False)
    psn_cert_type: str = ""
    certno: str = field(default="", repr=False)
    gend: str = ""
    naty: str = ""
    brdy: str = field(default="", repr=False)
    age: str = ""
    psn_type: str = ""
    cvlserv_flag: str = ""
    mdtrt_cert_type: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SetlInfo:
        """2208 spells the cash ``pdn_cash_pay`` in the spec (§M1.7); either is read."""
        if data.get("psn_cash_pay") is None and data.get("pdn_cash_pay") is not None:
            data = {**data, "psn_cash_pay": data["pdn_cash_pay"]}
        return cls(**_fill(cls, data))

    def balances(self, fund_total_includes_acct: bool = False) -> bool:
        """Does the split add up? Drives only the reconciliation check (§M1.3 caveat).

        Hunan style (default): fund + account + cash + hospital = total;
        Guangdong style: the fund total already includes the account.
        """
        parts = self.fund_pay_sumamt + self.psn_cash_pay + self.hosp_part_amt
        if not fund_total_includes_acct:
            parts += self.acct_pay
        return parts == self.medfee_sumamt


@dataclass(frozen=True)
class SetlDetail:
    fund_pay_type: str
    fund_pay_type_name: str
    inscp_scp_amt: Decimal
    crt_payb_lmt_amt: Decimal
    fund_payamt: Decimal
    setl_proc_info: str = ""


@dataclass(frozen=True)
class Settlement:
    """Result of 2206, 2207 or 2208; ``msgid`` is the request that produced it."""

    msgid: str
    setlinfo: SetlInfo
    setldetail: tuple[SetlDetail, ...] = ()

    @classmethod
    def from_output(cls, msgid: str, output: dict[str, Any]) -> Settlement:
        details = tuple(SetlDetail(**_fill(SetlDetail, d)) for d in output.get("setldetail") or ())
        return cls(msgid, SetlInfo.from_dict(output.get("setlinfo") or {}), details)


@dataclass(frozen=True)
class CancelSettlementRequest(Request["Settlement"]):
    infno: ClassVar[str] = "2208"
    setl_id: str
    mdtrt_id: str
    psn_no: str
    insuplc_admdvs: str

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> Settlement:
        return Settlement.from_output(msgid, output)


# --- 2601 reversal ----------------------------------------------------------


@dataclass(frozen=True)
class ReversalRequest(Request["ReversalResult"]):
    """2601: only psn_no + omsgid + oinfno (§M1.5)."""

    infno: ClassVar[str] = "2601"
    psn_no: str
    omsgid: str
    oinfno: str
    insuplc_admdvs: str

    def __post_init__(self) -> None:
        if self.oinfno not in REVERSIBLE_INFNOS:
            raise InvalidRequest(
                f"{self.oinfno} is not reversible (profile allows 2201, 2207, 2304)",
                f"交易 {self.oinfno} 不可冲正（仅 2201、2207、2304）",
            )
        if len(self.omsgid) != 30:
            raise InvalidRequest(
                "omsgid must be the 30-character original msgid", "原报文号须为30位"
            )

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> ReversalResult:
        return ReversalResult.from_output(output, msgid)


@dataclass(frozen=True)
class ReversalResult:
    """``rvs_rslt``: ``reversed`` (undone), ``voided`` (never applied, now barred),
    ``already`` (reversed before) or ``nothing`` (the original had failed)."""

    omsgid: str
    oinfno: str
    rvs_rslt: str
    msgid: str = ""  # the 2601 that returned it

    @classmethod
    def from_output(cls, output: dict[str, Any], msgid: str = "") -> ReversalResult:
        data = output.get("data")
        fields = _fill(cls, data if isinstance(data, dict) else {})
        fields["msgid"] = msgid
        return cls(**fields)


# --- 5261 settlement query, 2599 filing check (sscard profile) -------------


@dataclass(frozen=True)
class SettlementQueryRequest(Request["SettlementQueryResult"]):
    """Profile 5261: the settlement whose ``medins_setl_id`` is a given msgid. A query."""

    infno: ClassVar[str] = SETTLEMENT_QUERY_INFNO
    side_effects: ClassVar[bool] = False
    psn_no: str
    medins_setl_id: str
    insuplc_admdvs: str

    def body(self) -> dict[str, Any]:
        return {"data": _body(self)}

    def result(self, msgid: str, output: dict[str, Any]) -> SettlementQueryResult:
        return SettlementQueryResult.from_output(output)


class SettlementState(enum.StrEnum):
    NONE = "none"  # the platform never settled this msgid
    SETTLED = "settled"
    CANCELLED = "cancelled"  # by 2208
    REVERSED = "reversed"  # by 2601


@dataclass(frozen=True)
class SettlementQueryResult:
    setl_stas: SettlementState
    setlinfo: SetlInfo | None

    @classmethod
    def from_output(cls, output: dict[str, Any]) -> SettlementQueryResult:
        data = output.get("data") or {}
        state = SettlementState(_text(data, "setl_stas") or "none")
        info = data.get("setlinfo")
        return cls(state, SetlInfo.from_dict(info) if info else None)


class AreaCase(enum.StrEnum):
    """Where the insured comes from, relative to the place of treatment (§M1.6)."""

    LOCAL = "local"
    IN_PROVINCE = "in_province"  # 省内异地
    CROSS_PROVINCE = "cross_province"  # 跨省

    @classmethod
    def of(cls, insuplc_admdvs: str, mdtrtarea_admvs: str) -> AreaCase:
        """Province = first 2 digits, city = first 4 (the Zhuhai HIS rule of §M1.6)."""
        if insuplc_admdvs[:2] != mdtrtarea_admvs[:2]:
            return cls.CROSS_PROVINCE
        return cls.LOCAL if insuplc_admdvs[:4] == mdtrtarea_admvs[:4] else cls.IN_PROVINCE


class FilingStatus(enum.StrEnum):
    """Answer of the FilingCheck adapter (sscard profile, filing check row)."""

    FILED = "FILED"
    NOT_FILED = "NOT_FILED"
    EMERGENCY = "EMERGENCY"  # treated as filed
    UNKNOWN = "UNKNOWN"  # the desk confirms by hand; settlement not blocked

    @property
    def allows_settlement(self) -> bool:
        return self in (FilingStatus.FILED, FilingStatus.EMERGENCY)


@dataclass(frozen=True)
class FilingCheckRequest(Request["FilingStatus"]):
    """Profile 2599, routed with the insured area (``insuplc_admdvs``) in the envelope.
    A query."""

    infno: ClassVar[str] = FILING_CHECK_INFNO
    side_effects: ClassVar[bool] = False
    psn_no: str
    insuplc_admdvs: str
    mdtrtarea_admvs: str
    med_type: str
    begntime: str

    def body(self) -> dict[str, Any]:
        data = _body(self)
        data["insuplc_admdvs"] = self.insuplc_admdvs
        return {"data": data}

    def result(self, msgid: str, output: dict[str, Any]) -> FilingStatus:
        return FilingStatus(str((output.get("data") or {}).get("filing_stas")))


# --- 3201 daily totals ------------------------------------------------------


@dataclass(frozen=True)
class Totals:
    """Settlement totals of one day (profile: valid 2207s net of 2208 and 2601)."""

    count: int = 0
    medfee_sumamt: Decimal = ZERO
    fund_pay_sumamt: Decimal = ZERO
    acct_pay: Decimal = ZERO
    psn_cash_pay: Decimal = ZERO

    def differences(self, other: Totals) -> dict[str, tuple[Any, Any]]:
        """Fields that differ, as ``{name: (self, other)}``."""
        return {
            f.name: (getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        }


@dataclass(frozen=True)
class DailyTotalsRequest(Request["DailyTotalsResult"]):
    """3201 with exactly the spec's nine fields (§M1.7): the institution's totals of one
    insurance type, clearing type and clearing institution (``setl_optins``) over a
    period; no cash total. The platform answers ``stmtinfo{setl_optins, stmt_rslt,
    stmt_rslt_dscr}``: ``stmt_rslt`` 0 balanced, 1 not.

    A check, not a change: the platform compares totals and moves no money, so it
    counts as side-effect free. (The statement it keeps ends the day's 2601 window
    in the sscard profile; it is keyed by the msgid, so a retry under the same
    msgid is answered with the first reply and closes nothing more.)"""

    infno: ClassVar[str] = "3201"
    side_effects: ClassVar[bool] = False
    stmt_date: date
    local: Totals
    insutype: str
    clr_type: str
    setl_optins: str

    def __post_init__(self) -> None:
        if not (self.insutype and self.clr_type and self.setl_optins):
            raise InsuranceError(
                "3201 needs insutype, clr_type and setl_optins",
                "3201 须有险种、清算类别和结算经办机构",
            )

    def body(self) -> dict[str, Any]:
        day = self.stmt_date.isoformat()
        return {
            "data": {
                "insutype": self.insutype,
                "clr_type": self.clr_type,
                "setl_optins": self.setl_optins,
                "stmt_begndate": day,
                "stmt_enddate": day,
                "medfee_sumamt": self.local.medfee_sumamt,
                "fund_pay_sumamt": self.local.fund_pay_sumamt,
                "acct_pay": self.local.acct_pay,
                "fixmedins_setl_cnt": self.local.count,
            }
        }

    def result(self, msgid: str, output: dict[str, Any]) -> DailyTotalsResult:
        return DailyTotalsResult.from_output(msgid, output)


@dataclass(frozen=True)
class DailyTotalsResult:
    """``stmtinfo`` of a 3201."""

    setl_optins: str
    stmt_rslt: str
    stmt_rslt_dscr: str
    msgid: str = ""

    @property
    def balanced(self) -> bool:
        return self.stmt_rslt == "0"

    @classmethod
    def from_output(cls, msgid: str, output: dict[str, Any]) -> DailyTotalsResult:
        info = output.get("stmtinfo")
        if not isinstance(info, dict) or _text(info, "stmt_rslt") not in ("0", "1"):
            raise ValueError("3201 reply without stmtinfo.stmt_rslt")
        return cls(
            _text(info, "setl_optins"), _text(info, "stmt_rslt"), _text(info, "stmt_rslt_dscr"),
            msgid,
        )  # fmt: skip
