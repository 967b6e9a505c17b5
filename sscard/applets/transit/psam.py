"""The validator's PSAM: terminal number, key index, MAC1 (8070) and MAC2 check (8072).

reference §P3 and the sscard profile rows "PSAM application" and "PSAM
diversification": the PSAM DF is selected by FID 1001, EF 16 holds the 6-B terminal
number and EF 17 byte 0 the key index; 8070 is sent two-level (Lc 24: ASN right 8 B
then the issuer ID, as the T-Union bus firmware S6 does).

The PSAM keeps one purchase context (the last 8070). :attr:`Psam.context_seq` is the
terminal txn seq that 8070 returned: the context's identity. Tearing recovery (§P5.7)
asks 8072 only when the PSAM holds the context of *that* debit
(:meth:`Psam.holds_context_for`: same PSAM terminal number, same seq), so a proof is
never checked under another debit's session: after a restart, a PSAM reset or
another card's 8070 the MAC2 cannot be checked here (docs/transit-recovery.md).
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from sscard.apdu import Command
from sscard.apdu.catalog import CLA_ISO, CLA_PROPRIETARY, Ins
from sscard.apdu.errors import CardError
from sscard.applets.transit.errors import PsamError
from sscard.cards.ids import PSAM_DF_FID, PSAM_EF_KEY_INDEX, PSAM_EF_TERMINAL
from sscard.cards.layout import LayoutError
from sscard.cards.purse import SamCreditData, SamPurchaseInitData, SamPurchaseInitResponse
from sscard.errors import SscardError
from sscard.terminals.connection import Connection


class _Debit(Protocol):
    """What identifies a debit's PSAM session (a journal row has both)."""

    @property
    def psam_terminal_id(self) -> bytes: ...

    @property
    def terminal_seq(self) -> int: ...


class Mac2Check(Enum):
    VALID = "valid"  # 8072 9000
    INVALID = "invalid"  # 8072 9302: the card's MAC2 is wrong
    UNCHECKED = "unchecked"  # no matching PSAM context (6901, or none of ours)


class Psam:
    """A PSAM behind ``conn``; :meth:`open` selects it and reads its identity."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.terminal_id = b""
        self.key_index = 0
        #: Terminal txn seq of the 8070 whose context the PSAM holds (None: none known).
        self.context_seq: int | None = None

    def open(self) -> Psam:
        """SELECT 1001, READ BINARY EF 16 (terminal number) and EF 17 (key index)."""
        try:
            fid = PSAM_DF_FID.to_bytes(2, "big")
            self.conn.send(Command(CLA_ISO, Ins.SELECT, 0x00, 0x00, fid))
            tid = self.conn.send(
                Command(CLA_ISO, Ins.READ_BINARY, 0x80 | PSAM_EF_TERMINAL, 0, le=6)
            ).data
            idx = self.conn.send(
                Command(CLA_ISO, Ins.READ_BINARY, 0x80 | PSAM_EF_KEY_INDEX, 0, le=1)
            ).data
        except SscardError as exc:
            raise PsamError(
                f"PSAM did not open: {exc.message_en}", f"PSAM打开失败：{exc.message_zh}"
            ) from exc
        if len(tid) != 6 or len(idx) != 1:
            raise PsamError("PSAM files have the wrong size", "PSAM文件长度错误")
        self.terminal_id, self.key_index = tid, idx[0]
        self.context_seq = None
        return self

    def holds_context_for(self, debit: _Debit) -> bool:
        """Does the PSAM's purchase context belong to ``debit`` (same PSAM, same seq)?"""
        return (
            self.context_seq is not None
            and debit.psam_terminal_id == self.terminal_id
            and debit.terminal_seq == self.context_seq
        )

    def init_purchase(self, data: SamPurchaseInitData) -> SamPurchaseInitResponse:
        """8070 INIT SAM FOR PURCHASE -> terminal txn seq ‖ MAC1 (T=0: 61 08 + GET RESPONSE)."""
        self.context_seq = None
        try:
            r = self.conn.send(
                Command(CLA_PROPRIETARY, Ins.INIT_SAM_FOR_PURCHASE, 0x00, 0x00, data.encode(), le=8)
            )
            answer = SamPurchaseInitResponse.decode(r.data)
        except (SscardError, LayoutError) as exc:
            raise PsamError(
                f"PSAM 8070 failed: {exc.message_en}", f"PSAM 8070失败：{exc.message_zh}"
            ) from exc
        self.context_seq = answer.terminal_seq
        return answer

    def verify_mac2(self, mac2: bytes) -> Mac2Check:
        """8072 CREDIT SAM FOR PURCHASE: 9000 valid, 9302 invalid, 6901 no context."""
        try:
            self.conn.send(
                Command(
                    CLA_PROPRIETARY,
                    Ins.CREDIT_SAM_FOR_PURCHASE,
                    0x00,
                    0x00,
                    SamCreditData(mac2=mac2).encode(),
                )
            )
        except CardError as exc:
            if exc.sw == 0x9302:
                return Mac2Check.INVALID  # the PSAM keeps its context (psam.py, simulator)
            self.context_seq = None
            return Mac2Check.UNCHECKED
        except SscardError:  # PSAM gone: the card's answer still stands; clearing checks
            self.context_seq = None
            return Mac2Check.UNCHECKED
        self.context_seq = None
        return Mac2Check.VALID
