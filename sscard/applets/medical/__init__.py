"""The medical front desk: card → 1101 → area case → filing → 2201 … 2207 → receipt.

What a hospital or pharmacy desk does when a patient pays with the social
security card (§M1.2 outpatient chain, §M2.1 medium 03):

0. finish what an interrupted desk left behind (:meth:`FrontDesk.recover`);
1. read the card (SSSE EF05/EF06, PIN if configured, §C1.4, §C1.5);
2. 1101 with ``mdtrt_cert_type`` 03, ``mdtrt_cert_no`` = card number and
   ``card_sn`` = card identification code (the card is identified by both, §M1.7),
   and refuse unless the person returned is the cardholder (SSN, name);
3. classify local / in-province / cross-province from the *1101* insured area
   (never from the card's region: sscard profile, "Area codes");
4. cross-province: ask the :class:`FilingCheck` (profile, "Cross-province
   filing check"); ``NOT_FILED`` stops here, before anything is registered;
5. 2201 register → 2203 visit → 2204 fee items → 2206 pre-settle (the split);
6. the desk confirms → 2207 settle (a lost reply is resolved by the client,
   §M1.5) → :class:`Receipt`.

Nothing is left half-done: if a step after 2201 fails before settlement, the
visit is cancelled (2205 → 2202) and the error says so (:class:`VisitAborted`).
Cancelling a settlement is 2208 → 2205 → 2202 (§M1.5, order from HIS code).

Modules (read in this order):

* :mod:`.errors` - what can go wrong and what was undone (:class:`Cleanup`);
* :mod:`.inputs` - the card (:class:`CardIdentity`, :func:`read_identity`) and the
  fee items (:class:`VisitPlan`);
* :mod:`.results` - patient, registration, pre-settlement, receipt, cancellation and
  their bilingual text;
* :mod:`.desk` - :class:`FrontDesk`, the transaction sequence;
* :mod:`.config` - :class:`DeskConfig`, the desk's TOML file.
"""

from sscard.applets.medical.config import DeskConfig
from sscard.applets.medical.desk import (
    CERT_TYPE_SSC,
    PSN_CERT_ID,
    Confirm,
    FrontDesk,
    Notify,
    person_mismatch,
)
from sscard.applets.medical.errors import (
    CancelIncomplete,
    CardNotUsable,
    Cleanup,
    FilingRequired,
    RecoveredSettlement,
    SettlementDeclined,
    UnresolvedSettlement,
    VisitAborted,
    WrongPerson,
)
from sscard.applets.medical.inputs import CardIdentity, VisitPlan, read_identity
from sscard.applets.medical.results import (
    AREA_LABELS,
    MED_TYPES,
    Cancellation,
    Patient,
    PreSettlement,
    Receipt,
    Recovery,
    Registration,
)

__all__ = [
    "AREA_LABELS",
    "CERT_TYPE_SSC",
    "MED_TYPES",
    "PSN_CERT_ID",
    "CancelIncomplete",
    "Cancellation",
    "CardIdentity",
    "CardNotUsable",
    "Cleanup",
    "Confirm",
    "DeskConfig",
    "FilingRequired",
    "FrontDesk",
    "Notify",
    "Patient",
    "PreSettlement",
    "Receipt",
    "RecoveredSettlement",
    "Recovery",
    "Registration",
    "SettlementDeclined",
    "UnresolvedSettlement",
    "VisitAborted",
    "VisitPlan",
    "WrongPerson",
    "person_mismatch",
    "read_identity",
]
