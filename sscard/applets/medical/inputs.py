"""What the desk starts from: the card's identity and the visit's fee items.

The card gives the 1101 certificate: card number and card identification code
(``card_sn``, mandatory cross-province) from EF05, SSN and name from EF06
(§M2.1 medium 03, §M1.6; §C1.4, §C1.5). The fee
items are checked before anything is sent (§M1.2: 2204 takes one charge batch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sscard.apdu.errors import PinBlocked
from sscard.applets.medical.errors import CardNotUsable
from sscard.applets.ssse import SsseBlocked, SsseReader
from sscard.clock import beijing_now
from sscard.services.insurance import FeeItem, InvalidRequest, load_fee_items, money
from sscard.services.insurance.money import ZERO

if TYPE_CHECKING:
    from sscard.applets.keyprovider import KeyProvider
    from sscard.terminals.connection import Connection


@dataclass(frozen=True)
class CardIdentity:
    """What the desk takes from the card: EF05 card number, card identification code and
    region, EF06 SSN and name (§C1.4, §C1.5). Personal fields stay out of repr."""

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
    authentication, §C1.5); with keys the card is also proved genuine
    (internal authentication, §C3.4). An expired card is refused.
    """
    day = today or beijing_now().date()
    reader = SsseReader(conn, keys, today=lambda: day)
    try:
        read = reader.read(verify_pin=pin, authenticate=keys is not None)
    except PinBlocked as exc:
        raise CardNotUsable(
            "card PIN locked (no tries left): the holder can have it reset at a card service "
            "point of the issuing place or call 12333; settle with an ID card or the "
            "medical-insurance e-voucher meanwhile",
            "社保卡密码已锁定（无剩余次数）：请持卡人到发卡地社保卡服务网点重置或拨打12333；"
            "本次可改用身份证或医保电子凭证结算",
            code=exc.code,
        ) from exc
    except SsseBlocked as exc:
        raise CardNotUsable(
            "the card's social security application is locked: the holder can have it "
            "unblocked at a card service point of the issuing place or call 12333; settle "
            "with an ID card or the medical-insurance e-voucher meanwhile",
            "社保卡社会保障应用已锁定：请持卡人到发卡地社保卡服务网点解锁或拨打12333；"
            "本次可改用身份证或医保电子凭证结算",
            code=exc.code,
        ) from exc
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
