"""``Purse``: the terminal's view of the T-Union EP on a card, one method per command.

Every layout comes from :mod:`sscard.cards.purse` (reference §P1.3, §P2, §P5);
this module only builds the APDUs and decodes the answers. SELECT keeps the 9F0C copy
of EF 0015 from the FCI so a validator skips READ BINARY (§P1.2). GET BALANCE masks
bit 31 (sscard profile "GET BALANCE P1"; Metrodroid does the same) and reads P1 01 as
the amount overdrawn, as Metrodroid and CardBal do (§P5.8).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sscard.apdu import Command
from sscard.apdu.catalog import CLA_ISO, CLA_PROPRIETARY, Ins
from sscard.applets.transit.errors import NoPurse, PurseBlocked, TransitError
from sscard.cards.ids import (
    INTEROP_YES,
    PPSE_NAME,
    SFI_COMPOSITE,
    SFI_HOLDER,
    SFI_LOCAL_COMPOSITE,
    SFI_MANAGEMENT,
    SFI_PUBLIC,
    SFI_TRIP,
    SFI_TXN_LOG,
    TRIP_RECORDS_MAX,
    TUNION_EP_AID,
)
from sscard.cards.layout import Coded, LayoutError
from sscard.cards.purse import (
    BalanceResponse,
    CompositeRecord,
    CreditData,
    CreditResponse,
    DebitData,
    DebitResponse,
    Ef0015,
    Ef0016,
    Ef0017,
    EpFci,
    InitData,
    LoadInitResponse,
    PpseFci,
    ProveData,
    ProveResponse,
    PurchaseInitResponse,
    TripRecord,
    TxnRecord,
)
from sscard.terminals.connection import Connection

#: P2 of GET BALANCE / INITIALIZE: 02 = EP (electronic purse).
EP = 0x02
BALANCE_MASK = 0x7FFFFFFF
#: 8050 P1: 00 load, 01 purchase, 03 composite (CAPP) purchase (§P2).
P1_LOAD, P1_PURCHASE, P1_CAPP = 0x00, 0x01, 0x03


@dataclass(frozen=True)
class Balances:
    """GET BALANCE P1 00-03, in fen, bit 31 masked.

    P1 01 is the amount overdrawn (reference §P5.8: Metrodroid and CardBal; the
    public code overrides the profile table's "01 = overdraft limit", which nfcard and
    CTTIC use). The overdraft limit comes from INITIALIZE (:class:`Counters`).
    """

    balance: int  # P1 00, never negative
    overdrawn: int  # P1 01
    overdraft_used: int  # P1 02
    usable: int  # P1 03: balance plus what the overdraft still allows

    @property
    def signed(self) -> int:
        """The balance a reader shows: ``b0`` if positive, else ``-(P1 01)`` (Metrodroid
        ``TUnionTransitData.balance``)."""
        return self.balance if self.balance > 0 else -self.overdrawn


@dataclass(frozen=True)
class Counters:
    """Offline (purchase) and online (load) counters and the overdraft limit, as
    INITIALIZE reports them."""

    offline: int
    online: int
    overdraft_limit: int = 0


C = TypeVar("C", bound=Coded)


def composite_sfi(ef17: Ef0017) -> int:
    """Where this card keeps its composite (entry/exit) records: SFI 1A when EF 0017
    says interoperable (flag ``0001``), else the local file SFI 19 (reference
    §P1.3, §P5.4 "Non-interoperable (local) cards ... SFI 19"; profile "Metro composite
    record"). Only the flag counts: the category is checked elsewhere.
    """
    return SFI_COMPOSITE if ef17.interop_flag == INTEROP_YES else SFI_LOCAL_COMPOSITE


def _decode(layout: type[C], data: bytes, what: str) -> C:
    try:
        return layout.decode(data)
    except LayoutError as exc:
        raise TransitError(f"bad {what} from the card", f"卡片返回的{what}格式错误") from exc


class Purse:
    """The T-Union EP of the card behind ``conn`` (reference §P1-§P2)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.fci: EpFci | None = None

    # -- selection ------------------------------------------------------------------

    def select_ppse(self) -> PpseFci:
        """SELECT "2PAY.SYS.DDF01"; the directory lists ``MOT_T_EP`` (§P1.2). Optional."""
        r = self.conn.send(Command(CLA_ISO, Ins.SELECT, 0x04, 0x00, PPSE_NAME, le=256))
        return _decode(PpseFci, r.data, "PPSE FCI")

    def select(self) -> Ef0015:
        """SELECT the EP by AID; EF 0015 from the FCI's 9F0C (no READ BINARY, §P1.2).

        Raises :class:`NoPurse` (6A82) or :class:`PurseBlocked` (6A81).
        """
        r = self.conn.transmit(Command(CLA_ISO, Ins.SELECT, 0x04, 0x00, TUNION_EP_AID, le=256))
        if r.sw == 0x6A82:
            raise NoPurse()
        if r.sw == 0x6A81:
            raise PurseBlocked()
        r.check(0xA4)
        self.fci = _decode(EpFci, r.data, "EP FCI")
        return self.fci.ef0015

    @property
    def ef0015(self) -> Ef0015:
        if self.fci is None:
            raise TransitError("select the purse first", "请先选择电子钱包")
        return self.fci.ef0015

    # -- files ----------------------------------------------------------------------

    def _binary(self, sfi: int, size: int) -> bytes:
        return self.conn.send(Command(CLA_ISO, Ins.READ_BINARY, 0x80 | sfi, 0x00, le=size)).data

    def read_ef0015(self) -> Ef0015:
        return _decode(Ef0015, self._binary(SFI_PUBLIC, 30), "EF 0015")

    def read_ef0016(self) -> Ef0016:
        """Cardholder info (name, ID number): personal data, callers redact it."""
        r = self.conn.send(
            Command(CLA_ISO, Ins.READ_BINARY, 0x80 | SFI_HOLDER, 0x00, le=55), sensitive=True
        )
        return _decode(Ef0016, r.data, "EF 0016")

    def read_ef0017(self) -> Ef0017:
        return _decode(Ef0017, self._binary(SFI_MANAGEMENT, 60), "EF 0017")

    def read_record(self, sfi: int, number: int) -> bytes | None:
        """READ RECORD ``00 B2 nn (SFI<<3)|04 00``; None when there is no such record."""
        r = self.conn.transmit(Command(CLA_ISO, Ins.READ_RECORD, number, (sfi << 3) | 0x04, le=256))
        if r.sw in (0x6A83, 0x6A82):
            return None
        return r.check(0xB2).data

    def _records(self, layout: type[C], sfi: int, limit: int, what: str) -> list[C]:
        out: list[C] = []
        for n in range(1, limit + 1):
            data = self.read_record(sfi, n)
            if data is None or not any(data):
                break
            out.append(_decode(layout, data, what))
        return out

    def transactions(self, limit: int = 10) -> list[TxnRecord]:
        """EF 0018, newest first (§P5.2)."""
        return self._records(TxnRecord, SFI_TXN_LOG, limit, "EF 0018 record")

    def trips(self, limit: int = TRIP_RECORDS_MAX) -> list[TripRecord]:
        """EF 001E trip records, newest first (§P5.3)."""
        return self._records(TripRecord, SFI_TRIP, limit, "EF 001E record")

    def composite(self, record_id: int, sfi: int = SFI_COMPOSITE) -> CompositeRecord | None:
        """Composite record ``record_id`` (01 metro, profile; 02 bus, §P5.4) of EF 001A,
        or of EF 0019 on a local card (``sfi``, see :func:`composite_sfi`); None if
        never written (an all-zero body after the ``27 id 7D`` header)."""
        data = self.read_record(sfi, record_id)
        if data is None or not any(data[3:]):
            return None
        return _decode(CompositeRecord, data, f"EF 00{sfi:02X} record")

    # -- balance and counters -------------------------------------------------------

    def _balance(self, p1: int) -> int:
        r = self.conn.send(Command(CLA_PROPRIETARY, Ins.GET_BALANCE, p1, EP, le=4))
        if len(r.data) != 4:
            raise TransitError("GET BALANCE answer is not 4 bytes", "查询余额响应不是4字节")
        return BalanceResponse.decode(r.data).value & BALANCE_MASK

    def balance(self) -> int:
        """GET BALANCE P1 00, fen, bit 31 masked."""
        return self._balance(0x00)

    def overdrawn(self) -> int:
        """GET BALANCE P1 01: the amount overdrawn (Metrodroid/CardBal, §P5.8), fen."""
        return self._balance(0x01)

    def balances(self) -> Balances:
        return Balances(*(self._balance(p1) for p1 in range(4)))

    def counters(self, terminal_id: bytes = bytes(6), key_index: int = 1) -> Counters:
        """Both counters from INITIALIZE with amount 0, never completed (§P2, §P5.6).

        An abandoned INITIALIZE changes nothing on the card; no read-only command
        reports the counters.
        """
        offline = self.init_purchase(
            composite=False, key_index=key_index, amount=0, terminal_id=terminal_id
        )
        online = self.init_load(key_index=key_index, amount=0, terminal_id=terminal_id)
        return Counters(offline.offline_counter, online.online_counter, offline.overdraft_limit)

    # -- purchase -------------------------------------------------------------------

    def init_purchase(
        self, *, composite: bool, key_index: int, amount: int, terminal_id: bytes
    ) -> PurchaseInitResponse:
        """``80 50 01|03 02 0B`` key index ‖ amount ‖ terminal ID; 9401 when too poor."""
        data = InitData(key_index=key_index, amount=amount, terminal_id=terminal_id).encode()
        p1 = P1_CAPP if composite else P1_PURCHASE
        r = self.conn.send(Command(CLA_PROPRIETARY, Ins.INITIALIZE, p1, EP, data, le=0x0F))
        return _decode(PurchaseInitResponse, r.data, "INITIALIZE FOR PURCHASE answer")

    def update_cache(self, sfi: int, record_id: int, record: bytes) -> None:
        """UPDATE CAPP DATA CACHE ``80 DC id SFI<<3`` (§P2): committed with the next 8054."""
        self.conn.send(
            Command(CLA_PROPRIETARY, Ins.UPDATE_CAPP_DATA_CACHE, record_id, sfi << 3, record)
        )

    def debit(self, terminal_seq: int, when: datetime, mac1: bytes) -> DebitResponse:
        """DEBIT FOR (CAPP) PURCHASE ``80 54 01 00 0F``: answer TAC ‖ MAC2 (§P2)."""
        data = DebitData(terminal_seq=terminal_seq, time=when, mac1=mac1).encode()
        r = self.conn.send(Command(CLA_PROPRIETARY, Ins.DEBIT_FOR_PURCHASE, 0x01, 0x00, data, le=8))
        return _decode(DebitResponse, r.data, "DEBIT answer")

    def prove(self, txn_type: int, counter: int) -> ProveResponse:
        """GET TRANSACTION PROVE ``80 5A 00 type 02 counter`` -> MAC2 ‖ TAC (§P2, §P5.7).

        ``counter`` is N + 1 (profile "Tearing recovery counter"). An SW (9406) means
        the card holds no such debit.
        """
        data = ProveData(counter=counter).encode()
        r = self.conn.send(
            Command(CLA_PROPRIETARY, Ins.GET_TRANSACTION_PROVE, 0x00, txn_type, data, le=8)
        )
        return _decode(ProveResponse, r.data, "GET TRANSACTION PROVE answer")

    # -- load -----------------------------------------------------------------------

    def init_load_raw(self, *, key_index: int, amount: int, terminal_id: bytes) -> bytes:
        """``80 50 00 02 0B``: the 16-B answer, as the load host wants it."""
        data = InitData(key_index=key_index, amount=amount, terminal_id=terminal_id).encode()
        r = self.conn.send(Command(CLA_PROPRIETARY, Ins.INITIALIZE, P1_LOAD, EP, data, le=0x10))
        if len(r.data) != 16:
            raise TransitError("INITIALIZE FOR LOAD answer is not 16 bytes", "圈存初始化响应错误")
        return r.data

    def init_load(self, *, key_index: int, amount: int, terminal_id: bytes) -> LoadInitResponse:
        raw = self.init_load_raw(key_index=key_index, amount=amount, terminal_id=terminal_id)
        return _decode(LoadInitResponse, raw, "INITIALIZE FOR LOAD answer")

    def credit(self, credit_data: bytes) -> bytes:
        """CREDIT FOR LOAD ``80 52 00 00 0B`` date-time ‖ MAC2 -> TAC (§P2)."""
        _decode(CreditData, credit_data, "CREDIT FOR LOAD data")
        r = self.conn.send(
            Command(CLA_PROPRIETARY, Ins.CREDIT_FOR_LOAD, 0x00, 0x00, credit_data, le=4)
        )
        return _decode(CreditResponse, r.data, "CREDIT FOR LOAD answer").tac
