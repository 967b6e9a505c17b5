"""Load (圈存): INITIALIZE FOR LOAD, MAC2 from the load host, CREDIT FOR LOAD, TAC check.

reference §P2, §P4.2, §P4.4 and profile "Load TAC input". The terminal never
holds DLK: the host (an HSM behind a network service in production) checks the
card's MAC1 and issues MAC2. The host is anything matching :class:`LoadHostClient`;
``sscard.simulators.load_host.LoadHost`` does (this module does not import
simulators: the terminal side must run without them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from sscard.apdu.errors import ApduFormatError
from sscard.applets.transit.errors import LoadInterrupted, TransitError
from sscard.applets.transit.purse import Purse
from sscard.cards.ids import TxnType
from sscard.cards.purse import LoadInitResponse
from sscard.clock import Clock, card_now
from sscard.clock import now as beijing_now
from sscard.terminals.connection import Connection
from sscard.terminals.errors import TerminalError


class LoadAuthorizationLike(Protocol):
    """What the host approved; ``credit_data`` is the 11 B of 8052 (date-time ‖ MAC2)."""

    @property
    def credit_data(self) -> bytes: ...


A = TypeVar("A", bound=LoadAuthorizationLike)


class LoadHostClient(Protocol[A]):
    """The load host as the terminal sees it."""

    def authorize(
        self,
        *,
        init_response: bytes,
        issuer_id: bytes,
        asn: bytes,
        amount: int,
        terminal_id: bytes,
        date_time: bytes | datetime,
        txn_type: int = ...,
        overdrawn: int = ...,
    ) -> A: ...

    def verify_tac(self, auth: A, tac: bytes) -> bool: ...


@dataclass(frozen=True)
class LoadResult:
    """A completed load. ``tac_verified`` False: the host did not recognise the TAC
    (the value is on the card; report it to the host for reconciliation)."""

    amount: int
    balance_before: int  # negative when the card was overdrawn
    balance: int
    online_counter: int  # as INITIALIZE FOR LOAD reported it, before the increment
    asn: str
    tac_verified: bool


def load(
    conn: Connection,
    amount: int,
    load_host: LoadHostClient[A],
    *,
    terminal_id: bytes,
    key_index: int = 1,
    clock: Clock = beijing_now,
) -> LoadResult:
    """Load ``amount`` fen onto the purse behind ``conn``.

    The 8052 date-time (in MAC2, TAC and EF 0018) is Beijing time whatever ``TZ``
    (:mod:`sscard.clock`, reference §P5.8).

    Errors: the card's SW (``6985`` above the maximum balance, profile), the host's
    refusal (its own typed error), :class:`LoadInterrupted` when 8052 got no answer.
    """
    if amount <= 0:
        raise TransitError("load amount must be positive", "圈存金额应为正数")
    if amount > 0xFFFFFFFF:  # the 4-byte amount of INITIALIZE FOR LOAD (reference §P2)
        raise TransitError("load amount is too large", "圈存金额过大")
    if len(terminal_id) != 6:
        raise TransitError("terminal ID must be 6 bytes", "终端编号应为6字节")
    purse = Purse(conn)
    with conn.transaction():
        ef15 = purse.select()
        # An overdrawn card answers balance 0 and the amount overdrawn at P1 01 (§P5.8);
        # the load repays that first.
        overdrawn = purse.overdrawn() if purse.balance() == 0 else 0
        raw = purse.init_load_raw(key_index=key_index, amount=amount, terminal_id=terminal_id)
        init = LoadInitResponse.decode(raw)
        auth = load_host.authorize(
            overdrawn=overdrawn,
            init_response=raw,
            issuer_id=ef15.issuer_id,
            asn=bytes.fromhex(ef15.asn),
            amount=amount,
            terminal_id=terminal_id,
            date_time=card_now(clock),
            txn_type=int(TxnType.EP_LOAD),
        )
        try:
            tac = purse.credit(auth.credit_data)
        except (TerminalError, ApduFormatError) as exc:
            raise LoadInterrupted() from exc
    before = init.balance - overdrawn
    return LoadResult(
        amount=amount,
        balance_before=before,
        balance=before + amount,
        online_counter=init.online_counter,
        asn=ef15.asn,
        tac_verified=load_host.verify_tac(auth, tac),
    )
