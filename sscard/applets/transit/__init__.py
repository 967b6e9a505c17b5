"""T-Union transit purse, terminal side: the card reader, the validator, loads.

See reference part P. Modules: :mod:`.purse` (card commands),
:mod:`.psam` (the validator's PSAM), :mod:`.fares` and :mod:`.config` (operator rules),
:mod:`.validator` (the tap), :mod:`.recovery` (tearing, §P5.7), :mod:`.load` (圈存).
"""

from __future__ import annotations

from sscard.applets.transit.config import ValidatorConfig
from sscard.applets.transit.errors import (
    LoadInterrupted,
    NoPurse,
    PsamError,
    PurseBlocked,
    TransitConfigError,
    TransitError,
)
from sscard.applets.transit.fares import Fare, FarePolicy, FareTable, Station, compute_fare
from sscard.applets.transit.load import LoadHostClient, LoadResult, load
from sscard.applets.transit.psam import Mac2Check, Psam
from sscard.applets.transit.purse import Balances, Counters, Purse, composite_sfi
from sscard.applets.transit.results import (
    Refusal,
    TapAccepted,
    TapKind,
    TapRefused,
    TapResult,
)
from sscard.applets.transit.validator import Validator

__all__ = [
    "Balances",
    "Counters",
    "Fare",
    "FarePolicy",
    "FareTable",
    "LoadHostClient",
    "LoadInterrupted",
    "LoadResult",
    "Mac2Check",
    "NoPurse",
    "Psam",
    "PsamError",
    "Purse",
    "PurseBlocked",
    "Refusal",
    "Station",
    "TapAccepted",
    "TapKind",
    "TapRefused",
    "TapResult",
    "TransitConfigError",
    "TransitError",
    "Validator",
    "ValidatorConfig",
    "composite_sfi",
    "compute_fare",
    "load",
]
