"""The simulated platform's SQLite ledger and its transaction handlers.

core.py is the :class:`Ledger` (the file, the set-up API, :meth:`Ledger.handle`);
dispatch.py the infno table; one module per transaction family: persons.py
(9001, 1101, 2599), visits.py (2201-2205), settlement.py (2206-2208, 5261),
reversal.py (2601), reconciliation.py (3201); common.py what they share and
schema.py the tables and the StrEnums of their states.

sscard profile behaviour (docs/reference.md part M, last section): 2601 only for
oinfno 2201/2207/2304, same day, and not for a message the day's 3201 already
covered; a 2601 of a message never seen is an error and bars that msgid;
cross-province 2206/2207 without a filing is refused with infcode -1.
"""

from sscard.simulators.insurance_platform.ledger.common import Ctx, Handler, Refusal
from sscard.simulators.insurance_platform.ledger.core import MAX_INPUT_CHARS, Ledger, LedgerClosed
from sscard.simulators.insurance_platform.ledger.dispatch import HANDLERS, INFNOS
from sscard.simulators.insurance_platform.ledger.reconciliation import STATEMENT_FIELDS
from sscard.simulators.insurance_platform.ledger.reversal import UNKNOWN_ORIGINAL
from sscard.simulators.insurance_platform.ledger.schema import (
    FeeState,
    FilingStatus,
    MessageState,
    SettlementState,
    VisitState,
)
from sscard.simulators.insurance_platform.ledger.settlement import SETTLE_REQUIRED

__all__ = [
    "HANDLERS",
    "INFNOS",
    "MAX_INPUT_CHARS",
    "SETTLE_REQUIRED",
    "STATEMENT_FIELDS",
    "UNKNOWN_ORIGINAL",
    "Ctx",
    "FeeState",
    "FilingStatus",
    "Handler",
    "Ledger",
    "LedgerClosed",
    "MessageState",
    "Refusal",
    "SettlementState",
    "VisitState",
]
