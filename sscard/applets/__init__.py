"""Terminal-side applications: what a validator, a front desk, a gate does.

The main entry points, importable from here; each sub-package (``transit``,
``identity``, ``medical``) has its whole API in its own ``__all__``."""

from __future__ import annotations

from sscard._lazy import lazy_exports

#: Public name -> the module that defines it. Imported on first use (PEP 562), so
#: importing one module of this package stays as light as before.
_WHERE: dict[str, str] = {
    "Psam": "sscard.applets.transit",
    "Purse": "sscard.applets.transit",
    "TapAccepted": "sscard.applets.transit",
    "TapRefused": "sscard.applets.transit",
    "Validator": "sscard.applets.transit",
    "ValidatorConfig": "sscard.applets.transit",
    "IdentityCheck": "sscard.applets.identity",
    "IdentityPolicy": "sscard.applets.identity",
    "FrontDesk": "sscard.applets.medical",
    "VisitPlan": "sscard.applets.medical",
    "read_identity": "sscard.applets.medical",
    "SsseReader": "sscard.applets.ssse",
    "KeyProvider": "sscard.applets.keyprovider",
    "PsamKeyProvider": "sscard.applets.keyprovider",
    "SoftwareKeyProvider": "sscard.applets.keyprovider",
}

__all__ = [
    "FrontDesk",
    "IdentityCheck",
    "IdentityPolicy",
    "KeyProvider",
    "Psam",
    "PsamKeyProvider",
    "Purse",
    "SoftwareKeyProvider",
    "SsseReader",
    "TapAccepted",
    "TapRefused",
    "Validator",
    "ValidatorConfig",
    "VisitPlan",
    "read_identity",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
