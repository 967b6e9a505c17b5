"""``sscard identity`` CLI: check (card and QR), qr verify, audit; exit codes and masking."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sscard.cards.privacy import mask_name, mask_ssn
from sscard.cli.identity import command
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey, write_trust_store
from sscard.simulators.profile import CardProfile, new_card

EXAMPLE_POLICY = Path(__file__).resolve().parent.parent / "examples" / "identity-policy.toml"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    for name in ("SSCARD_AUDIT_DB", "SSCARD_ECARD_REPLAY_DB", "SSCARD_IDENTITY_POLICY",
                 "SSCARD_ECARD_TRUST", "SSCARD_TERMINAL_ID", "SSCARD_READER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def save(profile: CardProfile, path: Path) -> str:
    profile.save(path)
    return str(path)


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(command, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def profile() -> CardProfile:
    return new_card("zhejiang", seed=11)


def test_hotel_check_prints_masked_fields_and_exits_0(env: Path, profile: CardProfile) -> None:
    card = save(profile, env / "card.json")
    result = run("check", "--scenario", "hotel", "--sim", card)
    assert result.exit_code == 0, result.output
    ef06 = profile.ssse.ef06
    assert "ACCEPTED" in result.output
    assert mask_ssn(ef06.ssn) in result.output and ef06.ssn not in result.output
    assert f"name: {mask_name(ef06.full_name)}" in result.output
    assert "face" in result.output  # face match required at the hotel
    shown = run("check", "--scenario", "hotel", "--sim", card, "--no-redact", "--no-audit")
    assert ef06.ssn in shown.output


def test_counter_pin_from_stdin(env: Path, profile: CardProfile) -> None:
    card = save(profile, env / "card.json")
    ok = run("check", "--scenario", "counter", "--pin-stdin", "--sim", card, "--json",
             stdin="123456\n")  # fmt: skip
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.output)
    assert doc["outcome"] == "accepted"
    assert {c["check"]: c["status"] for c in doc["checks"]}["pin"] == "pass"
    refused = run("check", "--scenario", "counter", "--sim", card)
    assert refused.exit_code == 1
    assert "pin_missing" in refused.output


def test_counterfeit_card_exits_1(env: Path, profile: CardProfile) -> None:
    card = save(dataclasses.replace(profile, counterfeit=True), env / "fake.json")
    result = run("check", "--scenario", "hotel", "--sim", card, "--json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["reasons"] == ["counterfeit"] and doc["released"] == {}


def test_blacklist_and_policy_files(env: Path, profile: CardProfile) -> None:
    card = save(profile, env / "card.json")
    bl = env / "bl.txt"
    bl.write_text(
        f"# sscard-blacklist/1 version=1 issued=2025-01-01\n{profile.ssse.ef05.card_id.hex} 01\n",
        encoding="utf-8",
    )
    lost = run("check", "--scenario", "gate", "--sim", card, "--blacklist", str(bl))
    assert lost.exit_code == 1 and "reported_lost" in lost.output
    library = run("check", "--scenario", "library", "--policy", str(EXAMPLE_POLICY), "--sim", card)
    assert library.exit_code == 0, library.output
    assert "age_band" not in library.output and "masked_name" in library.output


def test_unknown_scenario_is_a_bilingual_error(env: Path, profile: CardProfile) -> None:
    result = run("check", "--scenario", "spa", "--sim", save(profile, env / "c.json"))
    assert result.exit_code == 2
    assert "no scenario" in result.output and "无场景" in result.output


def test_qr_check_and_qr_verify(env: Path, profile: CardProfile) -> None:
    key = IssuerKey.generate()
    trust = env / "trust.json"
    write_trust_store(trust, [key])
    issuer = EcardIssuer(key)
    payload = issuer.issue_for(profile).encode()
    ok = run("check", "--scenario", "gate", "--qr", payload, "--ecard-trust", str(trust))
    assert ok.exit_code == 0, ok.output
    ref = key.holder_reference(profile.ssse.ef06.ssn).hex().upper()
    assert f"holder_ref: {ref[:4]}{'*' * 28}" in ok.output and ref not in ok.output
    again = run("check", "--scenario", "gate", "--qr", payload, "--ecard-trust", str(trust))
    assert again.exit_code == 1 and "qr_replayed" in again.output
    hotel = run("check", "--scenario", "hotel", "--qr", issuer.issue_for(profile).encode(),
                "--ecard-trust", str(trust))  # fmt: skip
    assert hotel.exit_code == 1 and "qr_not_accepted" in hotel.output
    # The e-card verifier is attached as `identity qr verify`.
    fresh = issuer.issue_for(profile).encode()
    verify = run("qr", "verify", fresh, "--trust", str(trust))
    assert verify.exit_code == 0, verify.output
    assert "ACCEPTED" in verify.output


def test_audit_lists_masked_rows_since(env: Path, profile: CardProfile) -> None:
    card = save(profile, env / "card.json")
    run("check", "--scenario", "gate", "--sim", card)
    run("check", "--scenario", "hotel", "--sim", card)
    rows = json.loads(run("audit", "--json").output)
    assert [r["scenario"] for r in rows] == ["gate.card", "hotel.card"]
    assert rows[0]["subject_ssn"] == mask_ssn(profile.ssse.ef06.ssn)
    text = run("audit", "--scenario", "hotel.card").output
    assert "hotel.card accepted" in text and profile.ssse.ef06.ssn not in text
    future = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(time.time() + 3600))
    assert "no rows" in run("audit", "--since", future).output
    bad = CliRunner().invoke(command, ["audit", "--since", "yesterday"])
    assert bad.exit_code == 2


def test_demo_scene_runs_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    from sscard.demos import identity
    from sscard.demos.stage import Stage

    identity.run(Stage())
    out = capsys.readouterr().out
    assert out.count("ACCEPTED") == 2 and out.count("REFUSED") == 2
    assert "Counterfeit" in out and "已被使用" in out
    hotel_guest = new_card("zhejiang", seed=2022).ssse.ef06  # the demo's guest (same day)
    assert hotel_guest.ssn not in out and mask_ssn(hotel_guest.ssn) in out
