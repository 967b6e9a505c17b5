"""Tearing recovery (transit-purse.md §5.7): finish a debit whose 8054 answer was lost.

The validator wrote the debit context to the journal before 8054 (counter N, amount,
terminal txn seq, date-time). When the same card (same ASN) comes back:

1. GET TRANSACTION PROVE ``80 5A 00 type 02 <N+1>`` (profile "Tearing recovery counter");
2. MAC2 ‖ TAC back: the card *was* debited. MAC2 is checked with PSAM 8072 when the
   PSAM still holds that debit's 8070 context (:attr:`Psam.context_tap`); after a
   restart or another card's purchase it cannot be, and the row is completed with the
   card's TAC, which clearing verifies (§5.7 step 7 is a host-side check). Either way
   the trip counts and is not charged again;
3. only an SW back: not debited, the row is failed and the tap starts again at 8050.
   One exception: when the card's own log (EF 0018) holds this very debit (same
   counter N, amount, terminal, date-time) but can no longer prove it (the card was
   used elsewhere since), the row stays ``unknown`` for the host: never drop a
   charge the card shows.

A MAC2 that the PSAM rejects means a tampered card: the row is failed (it is never
exported) and the tap refused.

A recovered entry/exit re-reads its composite record for the answer from the file the
torn tap wrote (journal ``composite_sfi``/``composite_record``: SFI 1A, or 19 on a
local card, §5.4 and profile "Metro composite record"). That read comes after the row
is completed, so losing the card there costs only the record in the answer.
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
from sscard.cards.purse import CompositeRecord
from sscard.services.journal import Journal, TapRecord
from sscard.terminals.errors import TerminalError


@dataclass(frozen=True)
class RecoveryOutcome:
    """``debited``: True proven debited, False proven not, None undecidable (left unknown).

    ``result`` is the answer for the current tap, or None to go on with a normal tap.
    """

    debited: bool | None
    result: TapResult | None = None


def accepted_from(row: TapRecord, *, verified: bool) -> TapAccepted:
    """The tap result of a journal row completed by recovery (its fare details)."""
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
    )


def _in_log(purse: Purse, row: TapRecord) -> bool:
    """Does EF 0018 hold exactly this debit (counter N, amount, type, terminal, time)?"""
    return any(
        r.counter == row.card_counter
        and r.amount == row.amount
        and r.txn_type == row.txn_type
        and r.terminal_id == row.psam_terminal_id
        and r.time == row.txn_datetime
        for r in purse.transactions()
    )


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


def recover(purse: Purse, psam: Psam, journal: Journal, row: TapRecord) -> RecoveryOutcome:
    """Decide an unfinished debit of the selected card; transport errors propagate
    (the row stays ``unknown`` for the next tap)."""
    counter = (row.card_counter + 1) & 0xFFFF
    try:
        proof = purse.prove(row.txn_type, counter)
    except CardError as exc:
        if _in_log(purse, row):
            return RecoveryOutcome(None)
        journal.fail(row.id, f"805A SW {exc.sw:04X}: not debited")
        return RecoveryOutcome(False)
    check = Mac2Check.UNCHECKED
    if psam.context_tap == row.id:
        check = psam.verify_mac2(proof.mac2)
    if check is Mac2Check.INVALID:
        journal.fail(row.id, "805A: MAC2 invalid")
        refused = TapRefused(reason=Refusal.MAC2_INVALID, asn=row.asn.hex().upper())
        return RecoveryOutcome(False, refused)
    journal.complete(row.id, proof.tac, proof.mac2, row.balance_before - row.amount)
    result = accepted_from(journal.get(row.id), verified=check is Mac2Check.VALID)
    return RecoveryOutcome(True, dataclasses.replace(result, composite=_composite_of(purse, row)))
