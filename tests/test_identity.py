"""Identity checks over the simulator: every check, every scenario, four provinces.

Cards are generated profiles (sscard.simulators.profile.new_card) built into the card
OS and read through SimulatorTransport with the SsseReader and the TEST key set, so
every verdict below comes from real APDU exchanges (reference §C1.4-1.5, §C3.4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from sscard.applets.ecard import EcardVerifier, TrustStore
from sscard.applets.identity import (
    CHINA_TZ,
    DEFAULT_SCENARIOS,
    AgeBand,
    CardReading,
    IdentityCheck,
    IdentityPolicy,
    IdentityResult,
    ScenarioPolicy,
    age_on,
)
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.cards.privacy import mask_name, mask_ssn
from sscard.cards.ssn import SEX_FEMALE, SEX_MALE, make_ssn
from sscard.errors import ConfigError
from sscard.services.audit import AuditLog
from sscard.services.lists import Blacklist, TrustList
from sscard.services.replay_cache import ReplayCache
from sscard.simulators.card import build_card
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile, new_card
from sscard.terminals import Connection, SimulatorTransport

PROVINCES = ("shanghai", "jiangsu", "zhejiang", "anhui")
TODAY = date(2025, 6, 1)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=CHINA_TZ).timestamp()
EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "examples" / "identity-policy.toml"
KEYS = SoftwareKeyProvider(default_key_set())


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def card(province: str = "zhejiang", seed: int = 7, **kw: object) -> CardProfile:
    return new_card(province, seed=seed, today=TODAY, **kw)  # type: ignore[arg-type]


def reader(profile: CardProfile, keys: SoftwareKeyProvider | None = KEYS) -> SsseReader:
    conn = Connection(SimulatorTransport(build_card(profile)))
    conn.connect()
    return SsseReader(conn, keys, today=lambda: TODAY)


def checker(**kw: object) -> IdentityCheck:
    kw.setdefault("clock", Clock())
    return IdentityCheck(**kw)  # type: ignore[arg-type]


def statuses(result: IdentityResult) -> dict[str, tuple[str, str]]:
    return {c.check: (c.status, c.reason) for c in result.checks}


def with_ef05(profile: CardProfile, **changes: object) -> CardProfile:
    ef05 = dataclasses.replace(profile.ssse.ef05, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(profile, ssse=dataclasses.replace(profile.ssse, ef05=ef05))


def with_ef06(profile: CardProfile, **changes: object) -> CardProfile:
    ef06 = dataclasses.replace(profile.ssse.ef06, **changes)  # type: ignore[arg-type]
    return dataclasses.replace(profile, ssse=dataclasses.replace(profile.ssse, ef06=ef06))


# --------------------------------------------------------------------------- scenarios


@pytest.mark.parametrize("generation", [2, 3])
@pytest.mark.parametrize("province", PROVINCES)
def test_hotel_accepts_genuine_card_and_releases_name_and_ssn(
    province: str, generation: int
) -> None:
    profile = card(province, generation=generation)
    result = checker().check_card("hotel", reader(profile))
    assert result.accepted, result.text()
    assert statuses(result) == {
        "application": ("pass", "app_active"),
        "internal_auth": ("pass", "genuine"),
        "expiry": ("pass", "valid"),
        "blacklist": ("pass", "not_listed"),
        "region": ("pass", "trusted_region"),
        "ssn": ("pass", "ssn_ok"),
        "pin": ("skipped", "not_required"),
    }
    ef06 = profile.ssse.ef06
    assert result.released["name"] == ef06.full_name
    assert result.released["ssn"] == ef06.ssn
    assert result.released["card_id_code"] == profile.ssse.ef05.card_id.hex
    assert result.released["region"].startswith(profile.ssse.ef05.card_id.region)
    # Chip holds no photo: the desk is told to match the face.
    assert result.photo_on_card is False
    assert result.notes == ("face_match_required",)
    # Redacted by default.
    shown = result.to_dict()["released"]
    assert shown["name"] == mask_name(ef06.full_name)
    assert shown["ssn"] == mask_ssn(ef06.ssn)
    assert result.to_dict(redact=False)["released"]["ssn"] == ef06.ssn


@pytest.mark.parametrize("province", PROVINCES)
def test_gate_releases_only_masked_name_age_band_and_concession(province: str) -> None:
    profile = card(province)
    result = checker().check_card("gate", reader(profile))
    assert result.accepted, result.text()
    assert set(result.released) == {"masked_name", "age_band", "concession", "region"}
    ef06 = profile.ssse.ef06
    raw = " ".join(result.to_dict(redact=False)["released"].values())
    assert ef06.ssn not in raw and ef06.ssn[6:14] not in raw  # no SSN, no birth date
    assert ef06.full_name not in raw or len(ef06.full_name) == 1
    assert result.released["masked_name"] == mask_name(ef06.full_name)
    assert result.notes == ()


@pytest.mark.parametrize(
    ("age", "band", "code"),
    [(3, "0-5", "child_free"), (6, "6-17", "minor_half"), (59, "18-59", "adult"),
     (60, "60-64", "senior_half"), (64, "60-64", "senior_half"), (65, "65+", "senior_free"),
     (90, "65+", "senior_free")],
)  # fmt: skip
def test_gate_concession_from_the_birth_date_on_the_card(age: int, band: str, code: str) -> None:
    birth = TODAY.replace(year=TODAY.year - age)
    profile = card("anhui")
    ssn = make_ssn(profile.ssse.ef06.ssn[:6], birth, 11)  # odd sequence: male
    profile = with_ef06(profile, ssn=ssn, birth_date=birth, sex=SEX_MALE)
    result = checker().check_card("gate", reader(profile))
    assert result.accepted, result.text()
    assert result.released["age_band"] == band
    assert result.released["concession"].startswith(code + ":")


@pytest.mark.parametrize("province", PROVINCES)
def test_counter_needs_the_pin(province: str) -> None:
    profile = card(province)
    ok = checker().check_card("counter", reader(profile), pin="123456")
    assert ok.accepted, ok.text()
    assert statuses(ok)["pin"] == ("pass", "pin_ok")
    assert "card_number" in ok.released and "ssn" in ok.released

    missing = checker().check_card("counter", reader(profile))
    assert statuses(missing)["pin"] == ("fail", "pin_missing") and not missing.released

    wrong = checker().check_card("counter", reader(profile), pin="654321")
    assert statuses(wrong)["pin"] == ("fail", "pin_wrong")
    assert wrong.reasons == ("pin_wrong",)

    short = checker().check_card("counter", reader(profile), pin="12")
    assert statuses(short)["pin"] == ("fail", "pin_format")


def test_counter_pin_locked_card() -> None:
    result = checker().check_card("counter", reader(card(state="pin-locked")), pin="123456")
    assert statuses(result)["pin"] == ("fail", "pin_locked")


# --------------------------------------------------------------------------- checks


@pytest.mark.parametrize("province", PROVINCES)
@pytest.mark.parametrize("scenario", ["hotel", "gate", "counter"])
def test_counterfeit_card_is_refused(province: str, scenario: str) -> None:
    profile = dataclasses.replace(card(province), counterfeit=True)
    result = checker().check_card(scenario, reader(profile), pin="123456")
    assert not result.accepted
    assert statuses(result)["internal_auth"] == ("fail", "counterfeit")
    assert result.released == {}
    assert result.notes == ()


@pytest.mark.parametrize("province", PROVINCES)
def test_expired_card_is_refused(province: str) -> None:
    result = checker().check_card("hotel", reader(card(province, state="expired")))
    assert result.reasons == ("expired",)
    assert result.released == {}


def test_expiry_is_judged_on_the_beijing_date() -> None:
    profile = card()
    expiry = profile.ssse.ef05.expiry_date
    # 23:30 Beijing on the expiry day: still valid; 00:30 Beijing next day: expired.
    last = datetime(expiry.year, expiry.month, expiry.day, 23, 30, tzinfo=CHINA_TZ).timestamp()
    ok = checker(clock=Clock(last)).check_card("gate", reader(profile))
    late = checker(clock=Clock(last + 3600)).check_card("gate", reader(profile))
    assert statuses(ok)["expiry"] == ("pass", "valid")
    assert statuses(late)["expiry"] == ("fail", "expired")


def test_blocked_application_is_refused_and_nothing_else_runs() -> None:
    result = checker().check_card("hotel", reader(card(state="blocked")))
    s = statuses(result)
    assert s.pop("application") == ("fail", "app_blocked")
    assert set(s.values()) == {("skipped", "not_reached")}


@pytest.mark.parametrize("province", PROVINCES)
def test_reported_lost_card_by_card_id_code(province: str) -> None:
    profile = card(province)
    listed = Blacklist.parse(
        ["# sscard-blacklist/1 version=3 issued=2025-05-30", f"{profile.ssse.ef05.card_id.hex} 01"]
    )
    result = checker(blacklist=listed).check_card("hotel", reader(profile))
    assert result.reasons == ("reported_lost",)
    assert "12333" in result.check("blacklist").message_en


def test_cancelled_card_by_region_and_card_number() -> None:
    profile = card("jiangsu")
    ef05 = profile.ssse.ef05
    listed = Blacklist.parse(
        ["# sscard-blacklist/1 version=1 issued=2025-05-30",
         f"{ef05.card_id.region}:{ef05.card_number} 02"]
    )  # fmt: skip
    result = checker(blacklist=listed).check_card("gate", reader(profile))
    assert result.reasons == ("cancelled",)
    # Another card of the same region is not caught by it.
    other = checker(blacklist=listed).check_card("gate", reader(card("jiangsu", seed=99)))
    assert other.accepted


def test_untrusted_region_is_refused_at_the_gate() -> None:
    only_anhui = TrustList.parse(["# sscard-trustlist/1 version=1 issued=2025-01-01", "340000"])
    zj = card("zhejiang")
    result = checker(trust=only_anhui).check_card("gate", reader(zj))
    assert result.reasons == ("untrusted_region",)
    assert checker(trust=only_anhui).check_card("gate", reader(card("anhui"))).accepted


def test_out_of_delta_card_refused_at_gate_unless_policy_notes_it() -> None:
    profile = card("zhejiang")
    beijing = dataclasses.replace(profile.ssse.ef05.card_id, region="110100")
    profile = with_ef05(profile, card_id=beijing)
    refused = checker().check_card("gate", reader(profile))
    assert refused.reasons == ("untrusted_region",)
    library = IdentityPolicy.load(EXAMPLE_POLICY)
    noted = checker(policy=library).check_card("library", reader(profile))
    assert noted.accepted
    assert statuses(noted)["region"] == ("pass", "untrusted_region_noted")
    assert set(noted.released) == {"masked_name", "region"}


def test_ssn_inconsistent_with_birth_date_on_card() -> None:
    profile = card("anhui")
    shifted = profile.ssse.ef06.birth_date.replace(day=1 if profile.ssse.ef06.birth_date.day > 1
                                                   else 2)  # fmt: skip
    result = checker().check_card("hotel", reader(with_ef06(profile, birth_date=shifted)))
    assert result.reasons == ("ssn_mismatch",)
    assert result.released == {}


def test_ssn_inconsistent_with_sex_on_card() -> None:
    profile = card("shanghai")
    other = SEX_FEMALE if profile.ssse.ef06.sex == SEX_MALE else SEX_MALE
    result = checker().check_card("counter", reader(with_ef06(profile, sex=other)), pin="123456")
    assert result.reasons == ("ssn_mismatch",)


def test_ssn_with_a_wrong_check_digit() -> None:
    profile = card("jiangsu")
    ssn = profile.ssse.ef06.ssn
    bad = ssn[:17] + ("0" if ssn[17] != "0" else "1")
    result = checker().check_card("hotel", reader(with_ef06(profile, ssn=bad)))
    assert result.reasons == ("ssn_invalid",)


def test_without_keys_internal_auth_fails_and_gen3_holder_is_unreadable() -> None:
    gen2 = checker().check_card("hotel", reader(card(generation=2), keys=None))
    assert gen2.reasons == ("no_keys",)
    gen3 = checker().check_card("hotel", reader(card(generation=3), keys=None))
    assert statuses(gen3)["internal_auth"] == ("fail", "no_keys")
    assert statuses(gen3)["ssn"] == ("fail", "no_keys")


def test_policy_can_skip_checks() -> None:
    lax = IdentityPolicy(
        {"gate": ScenarioPolicy("gate", "gate", internal_auth=False, expiry=False,
                                blacklist=False, region="off", ssn=False)}
    )  # fmt: skip
    profile = dataclasses.replace(card(state="expired"), counterfeit=True)
    result = checker(policy=lax).check_card("gate", reader(profile, keys=None))
    assert result.accepted
    assert {s for s, _ in statuses(result).values()} == {"pass", "skipped"}
    assert statuses(result)["internal_auth"] == ("skipped", "not_required")


def test_unreadable_reading_evaluated_without_a_card() -> None:
    result = checker().evaluate("hotel", CardReading(holder_error="unreadable"))
    assert statuses(result)["application"] == ("fail", "unreadable")
    absent = checker().evaluate("gate", CardReading(app="absent"))
    assert absent.reasons == ("not_ssc",)


# --------------------------------------------------------------------------- policy file


def test_example_policy_file_loads() -> None:
    policy = IdentityPolicy.load(EXAMPLE_POLICY)
    assert set(policy.scenarios) == {"hotel", "gate", "counter", "library"}
    assert policy.retention_days == 30
    assert policy.scenario("counter").pin
    assert "ssn" not in policy.scenario("gate").release
    assert policy.scenario("gate").age_bands == DEFAULT_SCENARIOS["gate"].age_bands
    assert policy.trust_list().trusts_region("341100")
    assert not policy.trust_list().trusts_region("110100")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('schema = "other"', "schema"),
        ('schema = "sscard-identity-policy/1"\n[scenario.gate]\nrelease = ["ssn"]', "ssn"),
        ('schema = "sscard-identity-policy/1"\n[scenario.gate]\nrelease = ["name"]', "name"),
        ('schema = "sscard-identity-policy/1"\n[scenario.hotel]\nphoto = true', "photo"),
        ('schema = "sscard-identity-policy/1"\n[scenario.x]\npin = true', "kind"),
        ('schema = "sscard-identity-policy/1"\n[scenario.hotel]\nregion = "maybe"', "region"),
        ('schema = "sscard-identity-policy/1"\n[audit]\nretention_days = -1', "retention"),
        ('schema = "sscard-identity-policy/1"\n[trust]\nregions = ["33"]', "regions"),
        ('schema = "sscard-identity-policy/1"\n[[scenario.gate.age_bands]]\nmin_age = 5\n'
         'code = "x"\nen = "x"\nzh = "x"', "age bands"),
        ("schema = ", "TOML"),
    ],
)  # fmt: skip
def test_bad_policy_files_are_config_errors(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        IdentityPolicy.load(path)
    assert needle in info.value.message_en


def test_unknown_scenario_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        checker().evaluate("spa", CardReading())


def test_age_bands_and_birthdays() -> None:
    bands = ScenarioPolicy(
        "g", "gate", age_bands=(AgeBand(0, "a", "", ""), AgeBand(70, "b", "", ""))
    )
    assert bands.band_for(69) == (bands.age_bands[0], "0-69")
    assert bands.band_for(70) == (bands.age_bands[1], "70+")
    assert age_on(date(2000, 2, 29), date(2025, 2, 28)) == 24
    assert age_on(date(2000, 2, 29), date(2025, 3, 1)) == 25
    assert age_on(date(1960, 6, 1), TODAY) == 65


# --------------------------------------------------------------------------- audit


def test_every_check_is_audited_masked_with_policy_retention(tmp_path: Path) -> None:
    clock = Clock()
    doc = {"schema": "sscard-identity-policy/1", "audit": {"retention_days": 1}}
    policy = IdentityPolicy.from_toml(doc)
    with AuditLog(tmp_path / "audit.sqlite3", retention_days=policy.retention_days,
                  clock=clock) as log:  # fmt: skip
        assert log.retention_days == 1
        check = checker(policy=policy, audit=log, clock=clock, terminal_id="hefei-hotel-01")
        profile = card("zhejiang")
        check.check_card("hotel", reader(profile))
        check.check_card("hotel", reader(dataclasses.replace(profile, counterfeit=True)))
        rows = log.query()
        assert [r.result for r in rows] == ["accepted", "refused"]
        assert rows[0].scenario == "hotel.card" and rows[0].terminal_id == "hefei-hotel-01"
        assert rows[0].subject_name == mask_name(profile.ssse.ef06.full_name)
        assert rows[0].subject_ssn == mask_ssn(profile.ssse.ef06.ssn)
        assert "internal_auth:counterfeit" in rows[1].reasons
        assert "internal_auth:genuine" in rows[0].reasons
        # Two days later the next write purges both rows (retention 1 day from the policy).
        clock.now += 2 * 86400
        check.check_card("gate", reader(profile))
        assert [r.scenario for r in log.query()] == ["gate.card"]


def test_open_audit_uses_policy_retention(tmp_path: Path) -> None:
    policy = IdentityPolicy(retention_days=7)
    with policy.open_audit(tmp_path / "a.sqlite3") as log:
        assert log.retention_days == 7


# --------------------------------------------------------------------------- e-SSC QR


@pytest.fixture
def qr_setup(tmp_path: Path) -> Iterator[tuple[EcardIssuer, EcardVerifier, ReplayCache]]:
    key = IssuerKey.generate()
    issuer = EcardIssuer(key, clock=Clock())
    cache = ReplayCache(tmp_path / "replay.sqlite3")
    verifier = EcardVerifier(TrustStore({key.key_id: key.public_key}), cache, clock=Clock())
    yield issuer, verifier, cache
    cache.close()


def test_qr_round_trip_at_a_gate(
    qr_setup: tuple[EcardIssuer, EcardVerifier, ReplayCache], tmp_path: Path
) -> None:
    issuer, verifier, _ = qr_setup
    profile = card("shanghai")
    payload = issuer.issue_for(profile).encode()
    with AuditLog(tmp_path / "a.sqlite3", clock=Clock()) as log:
        check = checker(verifier=verifier, audit=log)
        result = check.check_qr(payload)
        assert result.accepted, result.text()
        assert result.medium == "ecard"
        s = statuses(result)
        assert s["ecard_qr"] == ("pass", "qr_ok")
        assert s["internal_auth"] == ("skipped", "not_in_qr")
        assert s["blacklist"] == ("pass", "not_listed")
        assert s["region"] == ("pass", "trusted_region")
        assert set(result.released) == {"region", "card_id_code", "holder_ref"}
        assert result.released["card_id_code"] == profile.ssse.ef05.card_id.hex
        ref = issuer.key.holder_reference(profile.ssse.ef06.ssn).hex().upper()
        assert result.released["holder_ref"] == ref
        # The holder reference is never shown whole, not even unredacted.
        for redact in (True, False):
            assert ref not in str(result.to_dict(redact=redact)) + result.text(redact=redact)
        assert profile.ssse.ef05.card_id.hex not in str(result.to_dict()) + result.text()
        assert result.notes == ("concession_unknown",)
        assert profile.ssse.ef06.ssn not in str(result.to_dict(redact=False))
        # Single use: the same code again is refused.
        again = check.check_qr(payload)
        assert again.reasons == ("qr_replayed",)
        rows = log.query()
        assert [r.scenario for r in rows] == ["gate.ecard", "gate.ecard"]
        assert rows[0].subject_card.startswith(profile.ssse.ef05.card_id.region)
        assert rows[0].subject_ssn == "" and rows[0].subject_name == ""


def test_qr_of_a_lost_card_is_refused(
    qr_setup: tuple[EcardIssuer, EcardVerifier, ReplayCache],
) -> None:
    issuer, verifier, _ = qr_setup
    profile = card("anhui")
    listed = Blacklist.parse(
        ["# sscard-blacklist/1 version=1 issued=2025-05-30", f"{profile.ssse.ef05.card_id.hex} 01"]
    )
    result = checker(verifier=verifier, blacklist=listed).check_qr(
        issuer.issue_for(profile).encode()
    )
    assert result.reasons == ("reported_lost",)
    assert result.released == {}


def test_bad_qr_codes_give_reasons(
    qr_setup: tuple[EcardIssuer, EcardVerifier, ReplayCache],
) -> None:
    issuer, verifier, _ = qr_setup
    check = checker(verifier=verifier)
    assert check.check_qr("SSC1:!!!").reasons[0].startswith("qr_")
    relay = check.check_qr("https://example.invalid/qr")
    assert relay.reasons == ("qr_not_ecard",)
    assert statuses(relay)["blacklist"] == ("skipped", "not_reached")
    payload = issuer.issue_for(card("jiangsu")).encode()
    hotel = check.check_qr(payload, "hotel")
    assert hotel.reasons == ("qr_not_accepted",)
    # Refusing by policy does not burn the code.
    assert check.check_qr(payload).accepted


def test_check_qr_without_a_verifier_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        checker().check_qr("SSC1:AAAA")
