"""No full SSN or name in any audit row, trace, log or default CLI output (Art. 18).

The scan looks for the holder's SSN and name as UTF-8 and GBK bytes (EF06 holds GBK,
reference §C1.5), as upper/lower hex (APDU traces), and as JSON ``\\uXXXX`` escapes,
in every file the runs leave (audit SQLite incl. WAL, APDU traces), in captured logs
and in CLI output. A ``--no-redact`` run is the control that shows the scan can fail.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from privacy_needles import NAME, NAME_EXT, holder_spellings, named_card

from sscard.applets.identity import IdentityCheck
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.cards.privacy import mask_name
from sscard.cli.identity import command
from sscard.services.audit import AuditLog
from sscard.simulators.card import build_card
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey, write_trust_store
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile
from sscard.terminals import Connection, SimulatorTransport, Tracer


def holder_card(province: str = "anhui") -> CardProfile:
    return named_card(province, 5)


def leaks(blob: bytes, profile: CardProfile) -> list[str]:
    return [label for label, needle in holder_spellings(profile).items() if needle in blob]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    for name in ("SSCARD_AUDIT_DB", "SSCARD_ECARD_REPLAY_DB", "SSCARD_IDENTITY_POLICY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def cli(*args: str, stdin: str | None = None) -> bytes:
    result = CliRunner().invoke(command, list(args), input=stdin, catch_exceptions=False)
    return result.stdout_bytes + result.stderr_bytes


def test_no_full_ssn_or_name_anywhere(env: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    profile = holder_card()
    work = env / "out"
    work.mkdir()
    card = env / "card.json"  # the card image holds the data by design: not scanned
    profile.save(card)
    fake = env / "fake.json"
    dataclasses.replace(profile, counterfeit=True).save(fake)
    key = IssuerKey.generate()
    trust = env / "trust.json"
    write_trust_store(trust, [key])
    audit = str(work / "audit.sqlite3")
    outputs: list[bytes] = []
    for i, (scenario, extra, stdin) in enumerate(
        [
            ("hotel", [], None),
            ("gate", ["--json"], None),
            ("counter", ["--pin-stdin"], "123456\n"),
            ("counter", ["--pin-stdin", "--json"], "000000\n"),
            ("hotel", ["--sim", str(fake)], None),
        ]
    ):
        sim = [] if "--sim" in extra else ["--sim", str(card)]
        outputs.append(
            cli("check", "--scenario", scenario, *sim, *extra, "--trace",
                str(work / f"trace{i}.jsonl"), "--audit-db", audit, stdin=stdin)
        )  # fmt: skip
    payload = EcardIssuer(key).issue_for(profile).encode()
    outputs.append(
        cli("check", "--scenario", "gate", "--qr", payload, "--ecard-trust", str(trust),
            "--audit-db", audit, "--replay-db", str(work / "replay.sqlite3"))
    )  # fmt: skip
    outputs.append(cli("audit", "--audit-db", audit))
    outputs.append(cli("audit", "--audit-db", audit, "--json"))

    # In-process too, with a trace sink and everything logged at DEBUG.
    with AuditLog(work / "api-audit.sqlite3") as log, Tracer(work / "api.jsonl") as tracer:
        conn = Connection(SimulatorTransport(build_card(profile)), tracer=tracer)
        conn.connect()
        reader = SsseReader(conn, SoftwareKeyProvider(default_key_set()))
        result = IdentityCheck(audit=log).check_card("counter", reader, pin="123456")
        assert result.accepted
        outputs.append(result.text().encode() + repr(result).encode())
        outputs.append(json.dumps(result.to_dict(), ensure_ascii=False).encode())
        outputs.append(repr(reader).encode() + repr(result.checks).encode())

    files = sorted(p for p in work.iterdir() if p.is_file())
    assert any(p.name.startswith("trace") for p in files)
    assert any(p.name.startswith("audit.sqlite3") for p in files)
    found = {str(p.name): leaks(p.read_bytes(), profile) for p in files}
    found.update({f"output {i}": leaks(o, profile) for i, o in enumerate(outputs)})
    found["logs"] = leaks(caplog.text.encode("utf-8"), profile)
    assert {where: what for where, what in found.items() if what} == {}
    # The runs did happen: rows with masked subjects exist.
    rows = json.loads(cli("audit", "--audit-db", audit, "--json"))
    assert len(rows) == 6
    assert {r["subject_name"] for r in rows if r["scenario"] != "gate.ecard"} == {
        mask_name(NAME + NAME_EXT)
    }


def test_the_scan_finds_unredacted_data(env: Path) -> None:
    """Control: with --no-redact the same scan reports the SSN and the GBK name in the trace."""
    profile = holder_card("shanghai")
    card = env / "card.json"
    profile.save(card)
    trace = env / "trace.jsonl"
    out = cli("check", "--scenario", "hotel", "--sim", str(card), "--no-redact", "--trace",
              str(trace), "--no-audit")  # fmt: skip
    assert "ssn utf-8" in leaks(out, profile)
    assert "full name utf-8" in leaks(out, profile)
    in_trace = leaks(trace.read_bytes(), profile)
    assert "ssn utf-8 HEX" in in_trace and "name gbk HEX" in in_trace
