"""What a tap returns: accepted (fare, balance, kind) or refused (reason code + text).

Why typed results, not exceptions: a validator loop must never crash on a bad card
(bad input of any kind must not crash it); every outcome is a value the gate
and the display act on. Reason codes are stable strings for logs and host systems.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Literal

from sscard.cards.purse import CompositeRecord, TripRecord


class TapKind(StrEnum):
    ENTRY = "entry"  # metro entry / bus boarding (1E type 03)
    EXIT = "exit"  # metro exit / bus alighting (1E type 04)
    SINGLE = "single"  # flat fare (1E type 06, or a simple purchase with no 1E)


class Refusal(Enum):
    """Why a tap is refused: (code, English, Chinese)."""

    NO_PURSE = ("NO_PURSE", "card has no transport function", "卡片无交通功能")
    BLOCKED = ("BLOCKED", "purse application blocked", "电子钱包已锁定")
    EXPIRED = ("EXPIRED", "card expired", "卡片已过期")
    NOT_YET_VALID = ("NOT_YET_VALID", "card not yet valid", "卡片未到启用日期")
    NOT_INTEROPERABLE = ("NOT_INTEROPERABLE", "card not valid in this city", "卡片不支持本地互通")
    CATEGORY = ("CATEGORY", "card category not accepted", "卡片类别不受理")
    BLACKLISTED = ("BLACKLISTED", "card is blacklisted", "卡片已列入黑名单")
    UNTRUSTED_ISSUER = ("UNTRUSTED_ISSUER", "card issuer not accepted", "发卡机构不受理")
    ALGORITHM = ("ALGORITHM", "card algorithm not supported", "卡片算法不支持")
    INSUFFICIENT_BALANCE = ("INSUFFICIENT_BALANCE", "insufficient balance", "余额不足")
    ALREADY_ENTERED = ("ALREADY_ENTERED", "already entered: tap out first", "已进站，请先出站")
    NO_ENTRY = ("NO_ENTRY", "no entry record: see the service desk", "无进站记录，请到服务台")
    ALREADY_PAID = ("ALREADY_PAID", "already paid", "请勿重复刷卡")  # repeat tap, §P5.8
    MAC_INVALID = ("MAC_INVALID", "card rejected the terminal MAC (9302)", "卡片MAC1校验失败")
    MAC2_INVALID = ("MAC2_INVALID", "card MAC2 invalid: card refused", "卡片MAC2校验失败，拒绝")
    CARD_REMOVED = ("CARD_REMOVED", "card removed: tap again", "卡片已移开，请重新刷卡")
    DEBIT_UNCERTAIN = (
        "DEBIT_UNCERTAIN",
        "card removed during payment: tap the same card again",
        "扣款中卡片移开，请用同一张卡重新刷卡",
    )
    PSAM_ERROR = ("PSAM_ERROR", "validator security module error", "验票机PSAM错误")
    CARD_ERROR = ("CARD_ERROR", "card error", "卡片错误")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def text_en(self) -> str:
        return self.value[1]

    @property
    def text_zh(self) -> str:
        return self.value[2]


@dataclass(frozen=True, kw_only=True)
class TapAccepted:
    """The gate opens. Amounts in fen; ``balance`` is after the debit."""

    kind: TapKind
    fare: int  # charged
    base_fare: int  # before discounts (the penalty for a missed tap-out, if any)
    discount: int  # category + transfer discount, fen
    balance: int
    asn: str
    tap_id: int
    station: str
    entry_station: str | None = None  # exits: where the trip began
    category: int = 0
    transfer: bool = False  # a transfer discount applied
    penalty: bool = False  # a missed tap-out was charged (max fare, no discount)
    recovered: bool = False  # completed by GET TRANSACTION PROVE after a tear (§P5.7)
    mac2_verified: bool = True  # False: not checked under this debit's own PSAM session
    #: True: the card's log shows this debit but nothing here could prove it; the
    #: journal row is ``uncertain`` (灰交易) and clearing settles it (recovery.py).
    uncertain: bool = False
    trip: TripRecord | None = None
    composite: CompositeRecord | None = None

    accepted: Literal[True] = True

    @property
    def text_en(self) -> str:
        return f"{self.kind.value}: fare {self.fare / 100:.2f}, balance {self.balance / 100:.2f}"

    @property
    def text_zh(self) -> str:
        kind = {"entry": "进站", "exit": "出站", "single": "扣费"}[self.kind.value]
        return f"{kind}：扣款{self.fare / 100:.2f}元，余额{self.balance / 100:.2f}元"


@dataclass(frozen=True, kw_only=True)
class TapRefused:
    """The gate stays shut; ``reason`` says why (never personal data)."""

    reason: Refusal
    asn: str | None = None
    detail: str = ""  # e.g. the status word

    accepted: Literal[False] = False

    @property
    def code(self) -> str:
        return self.reason.code

    @property
    def text_en(self) -> str:
        return self.reason.text_en + (f" ({self.detail})" if self.detail else "")

    @property
    def text_zh(self) -> str:
        return self.reason.text_zh + (f"（{self.detail}）" if self.detail else "")


TapResult = TapAccepted | TapRefused
