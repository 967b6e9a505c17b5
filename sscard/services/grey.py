"""Grey purchases (灰交易): checking a TAC, and settling an uncertain row later.

A validator that cannot prove a torn debit either way marks the journal row
``uncertain`` (:mod:`sscard.services.journal`, docs/transit-recovery.md). This module
is what decides it afterwards, on the clearing side or wherever the key is at hand:

* :class:`TacChecker` / :class:`MasterTacChecker`: recompute a purchase TAC over a
  row's *own* data (amount, type, PSAM terminal number, terminal txn seq, date-time;
  reference §P4.4, reference §K5) from the issuer's TAC master key. A
  validator given a checker uses it during recovery too (the "key at hand" case);
  in production the key stays with the issuer or an HSM.
* :func:`settle_uncertain`: the verdict on one grey row from the card's other
  transactions, in every journal clearing received (reference §K6 and its sscard
  profile "Grey at counter N"):

  1. the unverified 805A answer the row kept (``proof_tac``) verifies as this row's
     TAC: **debited** (code 11);
  2. a row of the same card at counter N + 1 recorded the card's newest EF 0018 entry
     (``previous``) and it is the purchase at counter N: **debited** when it is this
     row's debit (terminal, date-time, amount, type), **not debited** (12) when it is
     another's: the card commits each offline counter value once;
  3. a ``completed`` row of another terminal at counter N: **not debited** (12);
  4. a row at N + 1 whose balance before equals this row's balance before minus its
     amount, and no other unfailed row at N: **debited** (11) (the balance chain; a
     load in between breaks it, so it is the last rule);
  5. otherwise **pending** (04): more evidence may come; clearing expires it by its
     own calendar (code 14 after D + 7 in the sscard profile), not this function.

Rows are identified across journals by (PSAM terminal number, terminal txn seq):
journal ids are per validator.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from sscard.apdu.codec import bcd_datetime
from sscard.crypto import purse as pc
from sscard.errors import SscardError
from sscard.services.journal import PendingTap, TapRecord, TapState

__all__ = [
    "MasterTacChecker",
    "Settlement",
    "TacChecker",
    "Verdict",
    "row_key",
    "settle_uncertain",
    "tac_of",
]

#: EF 0018 transaction types of a purchase (reference §P5.1).
_PURCHASES = frozenset({0x06, 0x09})


class TacChecker(Protocol):
    """Checks a purchase TAC against a journal row's own data."""

    def check(self, row: PendingTap, tac: bytes) -> bool | None:
        """True: ``tac`` is this row's TAC; False: it is not; None: cannot tell (no key
        for this issuer, key version or algorithm)."""
        ...


class _PurseMasters(Protocol):
    def master(self, name: str, family: str) -> bytes: ...


class _KeySetLike(Protocol):
    @property
    def purse(self) -> _PurseMasters: ...

    @property
    def purse_key_version(self) -> int: ...


def tac_of(dtk: bytes, row: PendingTap) -> bytes:
    """The purchase TAC of ``row`` under the card's DTK (reference §P4.4)."""
    if row.algorithm_id is None:
        raise ValueError("the row does not say which algorithm the card uses")
    return pc.purchase_tac(
        dtk,
        amount=row.amount,
        txn_type=row.txn_type,
        terminal_id=row.psam_terminal_id,
        terminal_seq=row.terminal_seq,
        date_time=bcd_datetime(row.txn_datetime),
        algorithm=row.algorithm_id,
    )


class MasterTacChecker:
    """TAC checks with the issuer's TAC master keys (MTK), one per algorithm family.

    The card's DTK = Div(Div(MTK, issuer ID), ASN right 8 B) (profile "PSAM
    diversification"). ``key_version``: the version these masters are (None: any);
    a row made under another key version cannot be checked (None). The repr never
    shows a key.
    """

    def __init__(self, masters: Mapping[str, bytes], *, key_version: int | None = None) -> None:
        self._masters = dict(masters)
        self.key_version = key_version

    @classmethod
    def from_key_set(cls, keys: _KeySetLike) -> MasterTacChecker:
        """From a key set's purse MTK masters (the simulator's TEST keys, tests)."""
        masters: dict[str, bytes] = {}
        for family in ("3des", "sm4"):
            try:
                masters[family] = keys.purse.master("MTK", family)
            except SscardError:  # a key set without this family (KeyNotInSet)
                continue
        return cls(masters, key_version=keys.purse_key_version)

    def check(self, row: PendingTap, tac: bytes) -> bool | None:
        algorithm = row.algorithm_id
        if algorithm not in (pc.Algorithm.TDES, pc.Algorithm.SM4):
            return None
        if self.key_version is not None and row.key_version not in (None, self.key_version):
            return None
        master = self._masters.get("sm4" if algorithm == pc.Algorithm.SM4 else "3des")
        if master is None:
            return None
        dtk = pc.diversify2(master, row.issuer_id, row.asn[2:], algorithm)
        return hmac.compare_digest(tac_of(dtk, row), tac)

    def __repr__(self) -> str:
        return f"<MasterTacChecker families={sorted(self._masters)} keys=<redacted>>"


class Verdict(StrEnum):
    DEBITED = "debited"  # reference part K profile code 11: grey confirmed, paid
    NOT_DEBITED = "not_debited"  # code 12: grey void
    PENDING = "pending"  # code 04: not decided yet


_CODES = {Verdict.DEBITED: "11", Verdict.NOT_DEBITED: "12", Verdict.PENDING: "04"}


@dataclass(frozen=True)
class Settlement:
    """The verdict on one grey row, the rule that gave it and the clearing code."""

    row: TapRecord
    verdict: Verdict
    reason: str

    @property
    def code(self) -> str:
        return _CODES[self.verdict]

    @property
    def debited(self) -> bool:
        return self.verdict is Verdict.DEBITED


def row_key(row: PendingTap) -> tuple[bytes, int]:
    """A row's identity across journals: (PSAM terminal number, terminal txn seq)."""
    return (row.psam_terminal_id, row.terminal_seq)


def _is_this_debit(row: PendingTap, txn: object) -> bool:
    return (
        getattr(txn, "txn_type", None) == row.txn_type
        and getattr(txn, "amount", None) == row.amount
        and getattr(txn, "terminal_id", None) == row.psam_terminal_id
        and getattr(txn, "time", None) == row.txn_datetime
    )


def settle_uncertain(
    row: TapRecord, evidence: Iterable[TapRecord], *, tac_checker: TacChecker | None = None
) -> Settlement:
    """Decide a grey (``uncertain``) row, or an ``unknown`` one whose card never came
    back, from the rows of every journal (module docstring, rules 1-5).

    ``evidence`` may hold rows of other cards and ``row`` itself: both are skipped.
    """
    if row.state not in (TapState.UNCERTAIN, TapState.UNKNOWN, TapState.PENDING):
        raise ValueError(f"row {row.id} is {row.state}, not uncertain")
    n, me = row.card_counter, row_key(row)
    nxt = (n + 1) & 0xFFFF
    same = [e for e in evidence if e.asn == row.asn and row_key(e) != me]

    kept = row.proof_tac
    if kept is not None and tac_checker is not None and tac_checker.check(row, kept):
        return Settlement(row, Verdict.DEBITED, "the kept 805A TAC is this debit's")

    for e in same:
        prev = e.previous
        if e.card_counter != nxt or prev is None or prev.counter != n:
            continue
        if prev.txn_type not in _PURCHASES:
            continue
        if _is_this_debit(row, prev):
            return Settlement(row, Verdict.DEBITED, f"EF 0018 read at counter {nxt}: this debit")
        term = prev.terminal_id.hex().upper()
        return Settlement(row, Verdict.NOT_DEBITED, f"counter {n} used by terminal {term}")

    for e in same:
        if e.card_counter == n and e.state is TapState.COMPLETED:
            term = e.psam_terminal_id.hex().upper()
            return Settlement(row, Verdict.NOT_DEBITED, f"counter {n} completed at {term}")

    rivals = [e for e in same if e.card_counter == n and e.state is not TapState.FAILED]
    after = row.balance_before - row.amount
    if not rivals and any(e.card_counter == nxt and e.balance_before == after for e in same):
        return Settlement(row, Verdict.DEBITED, f"balance at counter {nxt} follows this debit")
    return Settlement(row, Verdict.PENDING, "no evidence yet")
