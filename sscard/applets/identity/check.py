"""The identity check itself: apply a scenario policy, release data, audit.

A physical card (via :mod:`.reading`) or an e-SSC QR code (regulation Art. 2:
the electronic card is the card) is checked for genuineness (reference §C3.4),
validity, loss / blacklist (Art. 21), issuing region and SSN consistency
(reference §C1.5), and, at a counter, the PIN (Art. 10). Each check writes one
masked audit row (Art. 18).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import TYPE_CHECKING

from sscard.applets.ecard import EcardVerifier, route_qr
from sscard.applets.identity.policy import IdentityPolicy, ScenarioPolicy
from sscard.applets.identity.reading import CardReading, read_card
from sscard.applets.identity.reasons import _BLACKLIST_CODES, CARD_CHECKS, QR_CHECKS
from sscard.applets.identity.result import CHINA_TZ, CheckResult, IdentityResult
from sscard.cards.privacy import mask_name, mask_ssn
from sscard.cards.regions import UnknownRegion, region_of
from sscard.cards.ssn import InvalidSsn, birth_date_of, sex_of, validate_ssn
from sscard.cards.ssse import Ef05
from sscard.errors import ConfigError
from sscard.services.audit import AuditLog
from sscard.services.lists import Blacklist, TrustList

if TYPE_CHECKING:
    from sscard.applets.ssse import SsseReader


def age_on(birth: date, today: date) -> int:
    """Whole years (a 29 February birthday counts on 1 March in common years)."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class IdentityCheck:
    """Runs scenario policies over card readings or e-SSC QR codes and audits each check."""

    def __init__(
        self,
        policy: IdentityPolicy | None = None,
        *,
        blacklist: Blacklist | None = None,
        trust: TrustList | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.time,
        terminal_id: str = "local",
        verifier: EcardVerifier | None = None,
    ) -> None:
        self.policy = policy or IdentityPolicy()
        self.blacklist = blacklist if blacklist is not None else Blacklist.empty()
        self.trust = trust if trust is not None else self.policy.trust_list()
        self.audit = audit
        self.clock = clock
        self.terminal_id = terminal_id
        self.verifier = verifier

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), CHINA_TZ).date()

    # ------------------------------------------------------------ physical card

    def check_card(
        self, scenario: str, reader: SsseReader, *, pin: str | None = None
    ) -> IdentityResult:
        """Read the card through ``reader`` and evaluate ``scenario`` (audited)."""
        policy = self.policy.scenario(scenario)
        return self.evaluate(scenario, read_card(reader, policy, pin=pin))

    def evaluate(self, scenario: str, reading: CardReading) -> IdentityResult:
        """Apply ``scenario`` to what was read (audited); see the module docstring."""
        policy = self.policy.scenario(scenario)
        at = self.clock()
        checks = self._card_checks(policy, reading)
        result = IdentityResult(
            scenario=scenario,
            medium="card",
            checks=tuple(checks),
            at=at,
        )
        if result.accepted:
            notes = ("face_match_required",) if policy.face_match else ()
            result = replace(result, released=self._release(policy, reading), notes=notes)
        self._audit(
            result,
            name=reading.ef06.full_name if reading.ef06 else None,
            ssn=reading.ef06.ssn if reading.ef06 else None,
            card_id_code=reading.ef05.card_id.encode() if reading.ef05 else None,
        )
        return result

    def _card_checks(self, policy: ScenarioPolicy, r: CardReading) -> list[CheckResult]:
        if r.app != "ok" or r.ef05 is None:
            first = {"blocked": "app_blocked", "absent": "not_ssc"}.get(r.app, "unreadable")
            return [CheckResult("application", "fail", first)] + [
                CheckResult(c, "skipped", "not_reached") for c in CARD_CHECKS[1:]
            ]
        ef05 = r.ef05
        out = [CheckResult("application", "pass", "app_active")]
        out.append(self._auth_check(policy, r))
        if policy.expiry:
            expired = ef05.expired(self.today())
            out.append(CheckResult("expiry", "fail" if expired else "pass",
                                   "expired" if expired else "valid"))  # fmt: skip
        else:
            out.append(CheckResult("expiry", "skipped", "not_required"))
        out.append(self._blacklist_check(policy, ef05.card_id.encode(), ef05))
        out.append(self._region_check(policy, ef05.card_id.region))
        out.append(self._ssn_check(policy, r))
        out.append(self._pin_check(policy, r))
        return out

    @staticmethod
    def _auth_check(policy: ScenarioPolicy, r: CardReading) -> CheckResult:
        if not policy.internal_auth:
            return CheckResult("internal_auth", "skipped", "not_required")
        if r.genuine is None:
            return CheckResult("internal_auth", "fail", r.auth_error or "unreadable")
        if r.genuine:
            return CheckResult("internal_auth", "pass", "genuine")
        return CheckResult("internal_auth", "fail", "counterfeit")

    def _blacklist_check(
        self, policy: ScenarioPolicy, card_id: bytes, ef05: Ef05 | None
    ) -> CheckResult:
        """By card ID code, then region:card number (the shared list format, lists.py)."""
        if not policy.blacklist:
            return CheckResult("blacklist", "skipped", "not_required")
        listed = self.blacklist.check_card_id(card_id)
        if listed is None and ef05 is not None:
            listed = self.blacklist.check_card_number(ef05.card_id.region, ef05.card_number)
        if listed is None:
            return CheckResult("blacklist", "pass", "not_listed")
        return CheckResult("blacklist", "fail", _BLACKLIST_CODES[listed])

    def _region_check(self, policy: ScenarioPolicy, region: str) -> CheckResult:
        if policy.region == "off":
            return CheckResult("region", "skipped", "not_required")
        if self.trust.trusts_region(region):
            return CheckResult("region", "pass", "trusted_region")
        if policy.region == "note":
            return CheckResult("region", "pass", "untrusted_region_noted")
        return CheckResult("region", "fail", "untrusted_region")

    @staticmethod
    def _ssn_check(policy: ScenarioPolicy, r: CardReading) -> CheckResult:
        """GB 11643 check digit, then birth date and sex against EF06 (reference §C1.5)."""
        if not policy.ssn:
            return CheckResult("ssn", "skipped", "not_required")
        if r.ef06 is None:
            return CheckResult("ssn", "fail", r.holder_error or "unreadable")
        try:
            ssn = validate_ssn(r.ef06.ssn)
        except InvalidSsn:
            return CheckResult("ssn", "fail", "ssn_invalid")
        if birth_date_of(ssn) != r.ef06.birth_date or sex_of(ssn) != r.ef06.sex:
            return CheckResult("ssn", "fail", "ssn_mismatch")
        return CheckResult("ssn", "pass", "ssn_ok")

    @staticmethod
    def _pin_check(policy: ScenarioPolicy, r: CardReading) -> CheckResult:
        if not policy.pin:
            return CheckResult("pin", "skipped", "not_required")
        outcome = r.pin or "missing"
        return CheckResult("pin", "pass" if outcome == "ok" else "fail", f"pin_{outcome}")

    def _release(self, policy: ScenarioPolicy, r: CardReading) -> dict[str, str]:
        """The fields ``policy`` releases, from an accepted reading (raw; redacted on output)."""
        ef05, ef06 = r.ef05, r.ef06
        assert ef05 is not None
        values: dict[str, str] = {
            "card_id_code": ef05.card_id.hex,
            "card_number": ef05.card_number,
            "region": _region_label(ef05.card_id.region),
            "expiry_date": ef05.expiry_date.isoformat(),
        }
        if ef06 is not None:
            age = age_on(ef06.birth_date, self.today())
            values.update(
                name=ef06.full_name,
                masked_name=mask_name(ef06.full_name),
                ssn=ef06.ssn,
                masked_ssn=mask_ssn(ef06.ssn),
                sex={"1": "1 male / 男", "2": "2 female / 女"}.get(ef06.sex, ef06.sex),
                birth_date=ef06.birth_date.isoformat(),
            )
            band = policy.band_for(age)
            if band is not None:
                values["age_band"] = band[1]
                values["concession"] = f"{band[0].code}: {band[0].en} / {band[0].zh}"
        return {k: values[k] for k in policy.release if k in values}

    # ------------------------------------------------------------ e-SSC QR

    def check_qr(self, payload: str | bytes, scenario: str = "gate") -> IdentityResult:
        """An e-SSC QR code (Art. 2: the electronic card is the card), audited.

        Releases only what the token carries: the region of the card identification
        code, the code itself and the issuer's opaque holder reference (payload
        version 02, reference part C profile), both masked on output.
        """
        policy = self.policy.scenario(scenario)
        at = self.clock()
        skipped = [CheckResult(c, "skipped", "not_in_qr") for c in QR_CHECKS[1:4]]
        if not policy.accept_qr:
            checks = [CheckResult("ecard_qr", "fail", "qr_not_accepted")]
            checks += [CheckResult(c, "skipped", "not_reached") for c in QR_CHECKS[1:]]
            result = IdentityResult(scenario, "ecard", tuple(checks), at=at)
            self._audit(result)
            return result
        if self.verifier is None:
            raise ConfigError(
                "no e-SSC verifier configured (trust store)", "未配置电子社保卡验证器（信任列表）"
            )
        qr = route_qr(payload, self.verifier)
        card_id = qr.card_id_code
        checks = [CheckResult("ecard_qr", "pass" if qr.accepted else "fail", f"qr_{qr.reason}")]
        checks += skipped
        if card_id is None:
            checks += [CheckResult(c, "skipped", "not_reached") for c in QR_CHECKS[4:]]
        else:
            checks.append(self._blacklist_check(policy, card_id, None))
            checks.append(self._region_check(policy, card_id[:3].hex()))
        result = IdentityResult(scenario, "ecard", tuple(checks), at=at)
        if result.accepted and card_id is not None and qr.holder_ref is not None:
            released = {
                "region": _region_label(card_id[:3].hex()),
                "card_id_code": card_id.hex().upper(),
                "holder_ref": qr.holder_ref.hex().upper(),
            }
            notes = ("concession_unknown",) if "concession" in policy.release else ()
            result = replace(result, released=released, notes=notes)
        self._audit(result, card_id_code=card_id)
        return result

    # ------------------------------------------------------------ audit

    def _audit(
        self,
        result: IdentityResult,
        *,
        name: str | None = None,
        ssn: str | None = None,
        card_id_code: bytes | None = None,
    ) -> None:
        """One masked row: outcome and ``check:reason`` for every check that ran."""
        if self.audit is None:
            return
        self.audit.record(
            terminal_id=self.terminal_id,
            scenario=f"{result.scenario}.{result.medium}",
            result=result.outcome,
            reasons=[f"{c.check}:{c.reason}" for c in result.checks if c.status != "skipped"],
            name=name,
            ssn=ssn,
            card_id_code=card_id_code,
        )


def _region_label(code: str) -> str:
    try:
        region = region_of(code)
    except UnknownRegion:
        return code
    return f"{code} {region.name_en} / {region.name_zh}"
