"""The instruction table: infno -> handler, one line per transaction, by family.

Like vsmartcard's table of INS bytes: :meth:`Ledger.handle` checks the envelope,
looks the infno up here and runs the handler inside the message's transaction.
"""

from __future__ import annotations

from types import MappingProxyType

from sscard.simulators.insurance_platform.ledger import (
    persons,
    reconciliation,
    reversal,
    settlement,
    visits,
)
from sscard.simulators.insurance_platform.ledger.common import Handler

HANDLERS: MappingProxyType[str, Handler] = MappingProxyType(
    {
        # sign-in and the insured person
        "9001": persons.sign_in,
        "1101": persons.person_info,
        # the visit and its fee details
        "2201": visits.register,
        "2202": visits.cancel_registration,
        "2203": visits.diagnose,
        "2204": visits.upload_fees,
        "2205": visits.delete_fees,
        # settlement
        "2206": settlement.pre_settle,
        "2207": settlement.settle,
        "2208": settlement.cancel,
        # reversal
        "2601": reversal.reverse,
        # reconciliation
        "3201": reconciliation.statement,
        # sscard profile queries
        "5261": settlement.query,
        "2599": persons.filing_check,
    }
)

#: Transactions the simulator answers; 5261 and 2599 are sscard profile queries.
INFNOS = tuple(HANDLERS)
