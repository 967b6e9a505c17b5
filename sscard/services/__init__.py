"""Back ends a terminal talks to: medical-insurance platform client, journals, trust lists.

The main entry points, importable from here; ``sscard.services.insurance`` has the
whole insurance client."""

from __future__ import annotations

from sscard._lazy import lazy_exports

#: Public name -> the module that defines it. Imported on first use (PEP 562), so
#: importing one module of this package stays as light as before.
_WHERE: dict[str, str] = {
    "Journal": "sscard.services.journal",
    "TapState": "sscard.services.journal",
    "MasterTacChecker": "sscard.services.grey",
    "settle_uncertain": "sscard.services.grey",
    "Blacklist": "sscard.services.lists",
    "TrustList": "sscard.services.lists",
    "AuditLog": "sscard.services.audit",
    "ReplayCache": "sscard.services.replay_cache",
    "ClientConfig": "sscard.services.insurance",
    "InsuranceClient": "sscard.services.insurance",
}

__all__ = [
    "AuditLog",
    "Blacklist",
    "ClientConfig",
    "InsuranceClient",
    "Journal",
    "MasterTacChecker",
    "ReplayCache",
    "TapState",
    "TrustList",
    "settle_uncertain",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
