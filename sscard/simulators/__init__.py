"""Simulated cards, PSAM, vpcd bridge and insurance platform (the other side of the wire).

The names most users need, importable from here: make a card image (``new_card``),
build the card (``build_card``/``load_card``), a PSAM (``new_psam``/``psam_card``),
the TEST key set, faults (tearing), the vpcd bridge and a private pcscd, the load
host and the insurance platform."""

from __future__ import annotations

from sscard._lazy import lazy_exports

#: Public name -> the module that defines it. Imported on first use (PEP 562), so
#: importing one module of this package stays as light as before.
_WHERE: dict[str, str] = {
    "CardProfile": "sscard.simulators.profile",
    "new_card": "sscard.simulators.profile",
    "SocialSecurityCard": "sscard.simulators.card",
    "build_card": "sscard.simulators.card",
    "load_card": "sscard.simulators.card",
    "PsamImage": "sscard.simulators.psam",
    "new_psam": "sscard.simulators.psam",
    "psam_card": "sscard.simulators.psam",
    "KeySet": "sscard.simulators.keys",
    "default_key_set": "sscard.simulators.keys",
    "generate_key_set": "sscard.simulators.keys",
    "Faults": "sscard.simulators.faults",
    "Tear": "sscard.simulators.faults",
    "TearPoint": "sscard.simulators.faults",
    "ins_is": "sscard.simulators.faults",
    "VpcdBridge": "sscard.simulators.vpcd",
    "PrivatePcscd": "sscard.simulators.pcscd",
    "LoadHost": "sscard.simulators.load_host",
    "EcardIssuer": "sscard.simulators.ecard_issuer",
    "IssuerKey": "sscard.simulators.ecard_issuer",
    "InsurancePlatform": "sscard.simulators.insurance_platform",
}

__all__ = [
    "CardProfile",
    "EcardIssuer",
    "Faults",
    "InsurancePlatform",
    "IssuerKey",
    "KeySet",
    "LoadHost",
    "PrivatePcscd",
    "PsamImage",
    "SocialSecurityCard",
    "Tear",
    "TearPoint",
    "VpcdBridge",
    "build_card",
    "default_key_set",
    "generate_key_set",
    "ins_is",
    "load_card",
    "new_card",
    "new_psam",
    "psam_card",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, __all__)
