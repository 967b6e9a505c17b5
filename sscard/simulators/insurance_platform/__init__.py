"""Simulated national medical security platform (the other side of the wire).

A real HTTP server with an SQLite ledger, insured areas of the four delta
provinces, a cross-province filing registry and injectable faults; see
§M1 and its sscard profile.
"""

from sscard.simulators.insurance_platform.ledger import INFNOS, Ledger, Refusal
from sscard.simulators.insurance_platform.policies import (
    POLICIES,
    AcctScope,
    AreaPolicy,
    compute_split,
    policy_for,
)
from sscard.simulators.insurance_platform.server import FAULT_KINDS, InsurancePlatform

__all__ = [
    "FAULT_KINDS",
    "INFNOS",
    "POLICIES",
    "AcctScope",
    "AreaPolicy",
    "InsurancePlatform",
    "Ledger",
    "Refusal",
    "compute_split",
    "policy_for",
]
