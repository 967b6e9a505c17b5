"""The cross-province filing check (异地就医备案) as an adapter.

sscard profile, row "Cross-province filing check": after 1101, if the
insured area and the treatment area are in different provinces, the desk asks
a :class:`FilingCheck` with (psn_no, insuplc_admdvs, mdtrtarea_admvs,
med_type, begntime). The default adapter, with no endpoint configured,
answers ``UNKNOWN``: the desk confirms by hand and the SDK does not block
settlement (the platform refuses an unfiled 2206/2207 itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from sscard.services.insurance.errors import OutcomeUnknown
from sscard.services.insurance.models import FilingCheckRequest, FilingStatus

if TYPE_CHECKING:
    from sscard.services.insurance.client import InsuranceClient


class FilingCheck(Protocol):
    def check(
        self, psn_no: str, insuplc_admdvs: str, mdtrtarea_admvs: str, med_type: str, begntime: str
    ) -> FilingStatus: ...


class NoFilingCheck:
    """Default: no endpoint configured, always ``UNKNOWN``."""

    def check(
        self, psn_no: str, insuplc_admdvs: str, mdtrtarea_admvs: str, med_type: str, begntime: str
    ) -> FilingStatus:
        return FilingStatus.UNKNOWN


class PlatformFilingCheck:
    """Ask the insured area through the platform (profile transaction 2599).

    A lost reply gives ``UNKNOWN`` (the query has no side effect); a refusal
    (e.g. unknown person) is raised as :class:`PlatformError`.
    """

    def __init__(self, client: InsuranceClient) -> None:
        self.client = client

    def check(
        self, psn_no: str, insuplc_admdvs: str, mdtrtarea_admvs: str, med_type: str, begntime: str
    ) -> FilingStatus:
        request = FilingCheckRequest(psn_no, insuplc_admdvs, mdtrtarea_admvs, med_type, begntime)
        try:
            return self.client.filing_check(request)
        except OutcomeUnknown:
            return FilingStatus.UNKNOWN
