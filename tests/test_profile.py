"""Card images and key sets: JSON round trips, atomic save, schema checks, the generator."""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from sscard.cards.cities import city_of_region
from sscard.cards.ids import AlgorithmFlag, PurseAlgorithmId, TripRecordType
from sscard.cards.purse import CompositeRecord, TripRecord
from sscard.cards.regions import province_by_key, region_of
from sscard.cards.ssn import birth_date_of, sex_of, validate_ssn
from sscard.cli.sim import command as sim_command
from sscard.crypto import purse as purse_crypto
from sscard.crypto import ssse as ssse_crypto
from sscard.simulators.keys import (
    TEST_KEYS_WARNING,
    KeyNotInSet,
    KeySet,
    default_key_set,
    generate_key_set,
)
from sscard.simulators.profile import (
    CARD_STATES,
    CardProfile,
    ProfileError,
    SchemaMismatch,
    new_card,
)

TODAY = date(2025, 6, 1)


def _card(**kw: object) -> CardProfile:
    args: dict[str, object] = {"province": "zhejiang", "seed": 42, "today": TODAY}
    args.update(kw)
    return new_card(**args)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- generator


@pytest.mark.parametrize("province", ["shanghai", "jiangsu", "zhejiang", "anhui"])
@pytest.mark.parametrize("generation", [2, 3])
@pytest.mark.parametrize("state", CARD_STATES)
def test_generator_makes_valid_cards(province: str, generation: int, state: str) -> None:
    card = new_card(province, generation, 2500, state, seed=7, today=TODAY)
    s, p = card.ssse, card.purse
    assert p is not None
    prov = province_by_key(province)
    ef05, ef06 = s.ef05, s.ef06
    # Card identification code: region of this province, MOHRSS RID.
    cid = ef05.card_id
    assert cid.region[:2] == prov.code[:2] and cid.rid_ok
    assert region_of(cid.region).province == prov
    # Card number: letter + 8 digits.
    assert len(ef05.card_number) == 9 and ef05.card_number[0].isalpha()
    assert ef05.card_number[1:].isdigit()
    # SSN valid and consistent with EF06.
    assert validate_ssn(ef06.ssn) == ef06.ssn
    assert birth_date_of(ef06.ssn) == ef06.birth_date and sex_of(ef06.ssn) == ef06.sex
    assert ef06.birthplace == ef06.ssn[:6]
    ef06.name.encode("gbk")
    assert 2 <= len(ef06.name) <= 4
    # Generation, version, algorithm.
    assert ef05.spec_version == f"{generation}.00" and ef05.generation == generation
    assert s.algorithm_flag == (AlgorithmFlag.SM4 if generation == 3 else AlgorithmFlag.DES)
    assert p.algorithm_id == (PurseAlgorithmId.SM4 if generation == 3 else PurseAlgorithmId.TDES)
    # 10-year validity; state.
    assert ef05.expiry_date.year - ef05.issue_date.year == 10
    assert ef05.expired(TODAY) == (state == "expired")
    assert s.pin.locked == (state == "pin-locked")
    assert p.blocked == (state == "blocked")
    assert s.atr.hex().upper().startswith("3B6D0000") and len(s.atr) == 17
    # Purse: issuer ID byte 0 card type, bytes 2-3 the issuing city's T-Union code
    # (GB/T 13497, reference §P5.8), also in EF 0017; interoperable.
    assert p.ef0015.issuer_id[0] == 0x01
    assert p.ef0015.city_code == city_of_region(cid.region).code == p.ef0017.city_code
    assert p.ef0015.asn[1:5] == p.ef0015.city_code
    assert len(p.ef0015.asn) == 20 and p.ef0015.asn.isdigit()
    assert p.ef0017.interoperable and p.ef0017.interop_flag == 0x0001
    assert p.ef0016.id_number == ef06.ssn
    assert p.balance == 2500 and p.max_balance == 100_000
    assert [r.amount for r in p.txn_records] == [2500] and p.online_counter == 1
    # Every record encodes with the shared layouts.
    for rec in (*ef05.records().values(), *ef06.records().values()):
        assert 3 <= len(rec) <= 32
    for layout in (p.ef0015, p.ef0016, p.ef0017, *p.txn_records):
        assert type(layout).decode(layout.encode()) == layout


def test_generator_is_deterministic_and_varied() -> None:
    assert _card() == _card()
    cards = [_card(seed=i) for i in range(30)]
    assert len({c.ssse.ef06.ssn for c in cards}) == 30
    assert len({c.ssse.ef05.card_id.region for c in cards}) > 3
    assert any(len(c.ssse.ef06.name) == 3 for c in cards)
    assert any(len(c.ssse.ef06.name) == 2 for c in cards)


def test_generator_rejects_bad_arguments() -> None:
    with pytest.raises(ProfileError):
        _card(generation=1)
    with pytest.raises(ProfileError):
        _card(state="lost")
    with pytest.raises(ProfileError):
        _card(balance=100_001)
    with pytest.raises(Exception, match="unknown province"):
        _card(province="beijing")


# ----------------------------------------------------------------------------- JSON


def _card_with_records() -> CardProfile:
    card = _card(balance=0)
    assert card.purse is not None
    card.purse.trip_records.append(TripRecord._test_vectors[0][1])
    card.purse.composite_records[1] = CompositeRecord._test_vectors[1][1]
    card.purse.composite_records[2] = CompositeRecord._test_vectors[0][1]
    card.counterfeit = True
    return card


def test_json_round_trip(tmp_path: Path) -> None:
    card = _card_with_records()
    text = card.to_json()
    data = json.loads(text)
    assert data["schema"] == "sscard-card/1"
    assert "pickle" not in text
    assert data["purse"]["composite_records"]["1"]["exit_time"] == "2025-03-01T09:30:00"
    assert CardProfile.from_json(text) == card
    path = tmp_path / "card.json"
    card.save(path)
    assert CardProfile.load(path) == card
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_save_is_atomic(tmp_path: Path, mocker: pytest.MockFixture) -> None:  # type: ignore[name-defined]
    path = tmp_path / "card.json"
    old = _card(seed=1)
    old.save(path)
    before = path.read_bytes()
    mocker.patch("sscard.simulators.profile.os.replace", side_effect=OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        _card(seed=2).save(path)
    assert path.read_bytes() == before
    assert CardProfile.load(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.json"]


@pytest.mark.parametrize("schema", ["sscard-card/2", None, 1, "sscard-keys/1"])
def test_schema_mismatch(tmp_path: Path, schema: object) -> None:
    data = _card().to_dict()
    if schema is None:
        del data["schema"]
    else:
        data["schema"] = schema
    path = tmp_path / "card.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SchemaMismatch) as info:
        CardProfile.load(path)
    assert info.value.expected == "sscard-card/1"
    assert "sscard-card/1" in info.value.message_en and info.value.message_zh


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("purse", "balance"), "100", "purse.balance: expected an integer"),
        (("purse", "balance"), 200_000, "balance: must be 0..max_balance"),
        (("ssse", "state"), "lost", "state: must be one of"),
        (("ssse", "ef05", "issue_date"), "2021-13-01", "issue_date: not an ISO date"),
        (("ssse", "ef05", "card_id"), "33", "card_id: not a card identification code"),
        (("ssse", "ef06", "nickname"), "x", "unknown field 'nickname'"),
        (("ssse", "pin", "pin"), "12a456", "PIN must be 4-12 digits"),
        (("purse", "ef0015", "issuer_id"), "0101", "issuer_id cannot be encoded"),
    ],
)
def test_bad_card_images(path: tuple[str, ...], value: object, message: str) -> None:
    data = _card().to_dict()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ProfileError, match=message.replace(".", r"\.").replace("(", r"\(")):
        CardProfile.from_dict(data)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        CardProfile.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ProfileError, match="not JSON"):
        CardProfile.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text("[1]", encoding="utf-8")
    with pytest.raises(ProfileError, match="not a JSON object"):
        CardProfile.load(tmp_path / "y.json")


def test_repr_hides_personal_data() -> None:
    card = _card()
    text = repr(card)
    assert card.ssse.ef06.name not in text and card.ssse.ef06.ssn not in text
    assert "123456" not in text


# ----------------------------------------------------------------------------- keys


def test_default_key_set() -> None:
    raw = json.loads(
        (Path(__file__).parent.parent / "sscard/data/test-keys.json").read_text(encoding="utf-8")
    )
    assert raw["schema"] == "sscard-keys/1" and raw["warning"] == TEST_KEYS_WARNING
    ks = default_key_set()
    assert ks.ssse.names() == ["IRK", "PUK", "RKSSSE", "STK", "UK"]
    assert ks.purse.names() == ["MLK", "MPK", "MTK"]
    assert ks.load_host_dlk_master("sm4") == ks.purse.master("MLK", "sm4")
    assert "keys" not in repr(ks) and ks.ssse.master("IRK", "3des").hex() not in repr(ks).lower()


def test_key_set_round_trip_and_errors(tmp_path: Path) -> None:
    ks = generate_key_set(seed=5)
    assert generate_key_set(seed=5) == ks and generate_key_set() != ks
    path = tmp_path / "keys.json"
    ks.save(path)
    assert KeySet.load(path) == ks
    data = ks.to_dict()
    data["schema"] = "sscard-keys/0"
    with pytest.raises(SchemaMismatch):
        KeySet.from_dict(data)
    data = ks.to_dict()
    del data["warning"]
    with pytest.raises(ProfileError, match="TEST KEYS"):
        KeySet.from_dict(data)
    data = ks.to_dict()
    data["purse"]["sm4"]["MPK"] = "00"
    with pytest.raises(ProfileError, match=r"purse\.sm4\.MPK: must be 32 hex digits"):
        KeySet.from_dict(data)
    data = ks.to_dict()
    del data["ssse"]["3des"]["RKSSSE"]
    with pytest.raises(ProfileError, match="missing RKSSSE"):
        KeySet.from_dict(data)
    with pytest.raises(KeyNotInSet):
        ks.ssse.master("DLK", "3des")


def test_card_keys_are_derived_per_card() -> None:
    ks = default_key_set()
    a, b = _card(seed=1), _card(seed=2)
    irk_a = ks.ssse_card_key("IRK", a.ssse.ef05.card_id.encode(), AlgorithmFlag.SM4)
    irk_b = ks.ssse_card_key("IRK", b.ssse.ef05.card_id.encode(), AlgorithmFlag.SM4)
    assert irk_a != irk_b and len(irk_a) == 16
    assert irk_a == ssse_crypto.card_key(
        ks.ssse.master("IRK", "sm4"), a.ssse.ef05.card_id.encode(), AlgorithmFlag.SM4
    )
    assert a.purse is not None
    f = a.purse.ef0015
    dpk = ks.purse_card_key("MPK", f.issuer_id, f.asn_right8, PurseAlgorithmId.TDES)
    level1 = purse_crypto.diversify(ks.purse.master("MPK", "3des"), f.issuer_id, 0)
    assert dpk == purse_crypto.diversify(level1, f.asn_right8, 0)


# ----------------------------------------------------------------------------- CLI


def test_cli_new_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "card.json"
    res = runner.invoke(
        sim_command,
        ["new", "--province", "anhui", "--generation", "2", "--balance", "1234",
         "--state", "pin-locked", "--seed", "3", "-o", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    card = CardProfile.load(out)
    assert card.ssse.generation == 2 and card.ssse.state == "pin-locked"
    assert card.purse is not None and card.purse.balance == 1234
    name, ssn = card.ssse.ef06.full_name, card.ssse.ef06.ssn

    res = runner.invoke(sim_command, ["show", str(out)])
    assert res.exit_code == 0
    assert name not in res.output and ssn not in res.output and "123456" not in res.output
    assert f"{ssn[:4]}**********{ssn[-4:]}" in res.output and "12.34 CNY" in res.output

    res = runner.invoke(sim_command, ["show", str(out), "--no-redact", "--json"])
    shown = json.loads(res.output)
    assert shown["holder"]["name"] == name and shown["holder"]["ssn"] == ssn
    assert shown["region"]["code"] == card.ssse.ef05.card_id.region

    res = runner.invoke(sim_command, ["show", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and "cannot read" in res.output


def test_cli_show_reports_schema_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema": "sscard-card/0"}), encoding="utf-8")
    res = CliRunner().invoke(sim_command, ["show", str(path)])
    assert res.exit_code == 2 and "schema" in res.output and "Traceback" not in res.output


def test_trip_record_type_enum_matches_layout() -> None:
    rec = TripRecord._test_vectors[0][1]
    assert TripRecordType(rec.record_type) is TripRecordType.EP_EXIT
    assert rec.time == datetime(2024, 12, 29, 14, 17, 40)


def test_profile_file_is_utf8_json_with_chinese(tmp_path: Path) -> None:
    card = _card()
    path = tmp_path / "c.json"
    card.save(path)
    assert card.ssse.ef06.name in path.read_text(encoding="utf-8")
    assert os.stat(path).st_size > 500
