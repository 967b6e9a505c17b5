"""Tearing recovery (reference §P5.7): decide a debit whose 8054 answer was lost.

The validator wrote the debit context to the journal before 8054 (counter N, amount,
PSAM terminal number and txn seq, date-time, balance before). When the same card
(same ASN) comes back to *this* validator, GET TRANSACTION PROVE
``80 5A 00 type 02 <N+1>`` (profile "Tearing recovery counter") asks the card for the
proof of its last purchase if that purchase took counter N. The card answers for
*its* last purchase at N, which may be another terminal's: every validator has its
own PSAM and journal, and the card may have paid elsewhere meanwhile. So a
proof completes the row only when it proves **this** debit:

* MAC2 verified by PSAM 8072, asked only when the PSAM still holds this debit's own
  8070 session (:meth:`Psam.holds_context_for`: same PSAM, same txn seq); or
* the TAC recomputed over this row's own data (amount, type, terminal, seq,
  date-time) by a :class:`~sscard.services.grey.TacChecker`, when the validator has
  the key (a test key set, an HSM link); most validators do not.

Without either, the card's own log (EF 0018) is read for the entry at counter N:

===========================================  ==========================================
what the card shows                          decision here
===========================================  ==========================================
805A proof, MAC2 or TAC of this debit        ``completed`` (the trip counts, no charge)
805A SW, card counter still N                ``failed``: not debited (the counter would
                                             have moved); the tap starts again at 8050
EF 0018 entry at N is another debit          ``failed``: the card spent counter N on
                                             that debit, this one was never committed
EF 0018 entry at N is this debit, 805A       ``uncertain``; the trip counts (the card's
proof not verifiable here                    log says so) and the unverified proof is
                                             kept for clearing
EF 0018 entry at N is this debit, card       ``uncertain``; the card was used since: a
used since (805A SW)                         new tap is charged normally
EF 0018 no longer holds N (rotated out)      ``uncertain``: the counter moved past N, so
                                             the debit happened *somewhere*; never failed
PSAM 8072 rejects the MAC2 of this debit's   ``uncertain`` and refused ``MAC2_INVALID``:
own session and EF 0018 shows this debit     the card contradicts itself (tampered)
===========================================  ==========================================

A MAC2 that fails is never read as "tampered" on its own: with a foreign proof it
fails for a genuine card; only the card's log showing this very debit makes it so.
``uncertain`` rows (灰交易) keep everything clearing needs to settle them from the
card's following transactions (:func:`sscard.services.grey.settle_uncertain`);
docs/transit-recovery.md says what is decided here and what is left to clearing.

A recovered entry/exit re-reads its composite record for the answer from the file the
torn tap wrote (journal ``composite_sfi``/``composite_record``: SFI 1A, or 19 on a
local card, §P5.4 and profile "Metro composite record"). That read comes after the row
is decided, so losing the card there costs only the record in the answer.

The public counterpart is CardLan's bus firmware (S6, ``SecondDebitChas``): reset,
select, 805A with N + 1, MAC2 to PSAM 8072, or redo the purchase from 8050 on an SW.
It runs while the same card is still in the field, so its PSAM session is always the
debit's own; this module covers the card that comes back later, after other taps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sscard.apdu.errors import ApduFormatError, CardError
from sscard.applets.transit.errors import TransitError
from sscard.applets.transit.psam import Mac2Check, Psam
from sscard.applets.transit.purse import Purse
from sscard.applets.transit.results import (
    Refusal,
    TapAccepted,
    TapKind,
    TapRefused,
    TapResult,
)
from sscard.cards.purse import CompositeRecord, ProveResponse, TxnRecord
from sscard.services.grey import TacChecker
from sscard.services.journal import Journal, TapRecord
from sscard.terminals.errors import TerminalError

#: EF 0018 types of a purchase (reference §P5.1): 06 EP, 09 composite.
_PURCHASES = (0x06, 0x09)


@dataclass(frozen=True)
class RecoveryOutcome:
    """``debited``: True proven debited, False proven not, None not proven here (the row
    is ``uncertain``, or stays ``unknown`` when the card went away).

    ``result`` is the answer for the current tap, or None to go on with a normal tap.
    """

    debited: bool | None
    result: TapResult | None = None


def accepted_from(row: TapRecord, *, verified: bool, uncertain: bool = False) -> TapAccepted:
    """The tap result of a journal row decided by recovery (its fare details)."""
    fare = row.fare
    entry = fare.get("entry_station")
    return TapAccepted(
        kind=TapKind(fare.get("kind", TapKind.SINGLE.value)),
        fare=row.amount,
        base_fare=int(fare.get("base", row.amount)),
        discount=int(fare.get("base", row.amount)) - row.amount,
        balance=row.balance_before - row.amount,
        asn=row.asn.hex().upper(),
        tap_id=row.id,
        station=row.station,
        entry_station=str(entry) if entry else None,
        category=int(fare.get("category", 0)),
        transfer=bool(fare.get("transfer", False)),
        penalty=bool(fare.get("penalty", False)),
        recovered=True,
        mac2_verified=verified,
        uncertain=uncertain,
    )


def is_this_debit(row: TapRecord, txn: TxnRecord) -> bool:
    """Is the EF 0018 entry ``txn`` this row's debit (counter, type, amount, terminal,
    date-time)? The card logs each offline counter value once."""
    return (
        txn.counter == row.card_counter
        and txn.txn_type == row.txn_type
        and txn.amount == row.amount
        and txn.terminal_id == row.psam_terminal_id
        and txn.time == row.txn_datetime
    )


def _entry_at(purse: Purse, row: TapRecord) -> TxnRecord | None:
    """The card's EF 0018 purchase entry that used counter N, if still in the log."""
    for txn in purse.transactions():
        if txn.txn_type in _PURCHASES and txn.counter == row.card_counter:
            return txn
    return None


def _other(txn: TxnRecord) -> str:
    return f"terminal {txn.terminal_id.hex().upper()} {txn.time:%Y%m%d%H%M%S} {txn.amount}"


def _composite_of(purse: Purse, row: TapRecord) -> CompositeRecord | None:
    """The composite record the torn tap wrote, from the same SFI and record ID; None
    for a tap that wrote none, or when the card does not answer (the debit stands)."""
    sfi, rid = row.fare.get("composite_sfi"), row.fare.get("composite_record")
    if not isinstance(sfi, int) or not isinstance(rid, int):
        return None
    try:
        return purse.composite(rid, sfi)
    except (CardError, TerminalError, TransitError, ApduFormatError):
        return None


def _answer(
    purse: Purse, journal: Journal, row: TapRecord, *, verified: bool, uncertain: bool = False
) -> TapAccepted:
    result = accepted_from(journal.get(row.id), verified=verified, uncertain=uncertain)
    return dataclasses.replace(result, composite=_composite_of(purse, row))


def recover(
    purse: Purse,
    psam: Psam,
    journal: Journal,
    row: TapRecord,
    *,
    tac_checker: TacChecker | None = None,
) -> RecoveryOutcome:
    """Decide an unfinished debit of the selected card (module docstring table);
    transport errors propagate (the row stays ``unknown`` for the next tap)."""
    counter = (row.card_counter + 1) & 0xFFFF
    try:
        proof = purse.prove(row.txn_type, counter)
    except CardError as exc:
        return _without_proof(purse, psam, journal, row, f"805A SW {exc.sw:04X}")
    return _with_proof(purse, psam, journal, row, proof, tac_checker)


def _with_proof(
    purse: Purse,
    psam: Psam,
    journal: Journal,
    row: TapRecord,
    proof: ProveResponse,
    tac_checker: TacChecker | None,
) -> RecoveryOutcome:
    """805A answered MAC2 ‖ TAC for N + 1: the card's last purchase took counter N.
    Whose purchase it was is what this decides."""
    n, balance_after = row.card_counter, row.balance_before - row.amount
    check = Mac2Check.UNCHECKED
    if psam.holds_context_for(row):  # this debit's own session: MAC2 proves or refutes
        check = psam.verify_mac2(proof.mac2)
    if check is Mac2Check.VALID:
        journal.complete(row.id, proof.tac, proof.mac2, balance_after)
        return RecoveryOutcome(True, _answer(purse, journal, row, verified=True))
    tac_ok = tac_checker.check(row, proof.tac) if tac_checker is not None else None
    if tac_ok:
        journal.complete(row.id, proof.tac, proof.mac2, balance_after)
        return RecoveryOutcome(True, _answer(purse, journal, row, verified=False))
    entry = _entry_at(purse, row)
    if entry is not None and not is_this_debit(row, entry):
        journal.fail(row.id, f"805A proof is another debit at counter {n} ({_other(entry)})")
        return RecoveryOutcome(False)
    kept = {"proof_tac": proof.tac, "proof_mac2": proof.mac2}
    if entry is None:  # rotated out of EF 0018 by later loads: whose debit is unknown
        journal.mark_uncertain(row.id, f"805A proof for {n + 1}; EF 0018 lacks counter {n}", **kept)
        return RecoveryOutcome(None)
    if check is Mac2Check.INVALID:  # this debit in the card's log, a MAC2 that is not
        journal.mark_uncertain(row.id, "EF 0018 shows this debit; 805A MAC2 invalid", **kept)
        refused = TapRefused(reason=Refusal.MAC2_INVALID, asn=row.asn.hex().upper())
        return RecoveryOutcome(None, refused)
    if tac_ok is False:  # the key holder's TAC disagrees with the card's log: charge anew
        journal.mark_uncertain(row.id, "EF 0018 shows this debit; TAC does not verify", **kept)
        return RecoveryOutcome(None)
    journal.mark_uncertain(row.id, "EF 0018 shows this debit; 805A proof unverified", **kept)
    return RecoveryOutcome(None, _answer(purse, journal, row, verified=False, uncertain=True))


def _without_proof(
    purse: Purse, psam: Psam, journal: Journal, row: TapRecord, sw: str
) -> RecoveryOutcome:
    """805A answered only an SW: the card's last purchase did not take counter N (or is
    of another type). The card's counter and log say whether this debit happened."""
    n = row.card_counter
    now = purse.init_purchase(
        composite=False, key_index=psam.key_index, amount=0, terminal_id=psam.terminal_id
    ).offline_counter  # an abandoned 8050 changes nothing (Purse.counters)
    if now == n:
        journal.fail(row.id, f"{sw}; card counter still {n}: not debited")
        return RecoveryOutcome(False)
    if now < n:
        journal.mark_uncertain(row.id, f"{sw}; card counter {now} below N {n}")
        return RecoveryOutcome(None)
    entry = _entry_at(purse, row)
    if entry is None:
        journal.mark_uncertain(row.id, f"{sw}; card counter {now} > N {n}; EF 0018 lacks {n}")
        return RecoveryOutcome(None)
    if not is_this_debit(row, entry):
        journal.fail(row.id, f"{sw}; counter {n} used by {_other(entry)}: not debited")
        return RecoveryOutcome(False)
    journal.mark_uncertain(row.id, f"{sw}; EF 0018 shows this debit; card counter {now}")
    return RecoveryOutcome(None)
