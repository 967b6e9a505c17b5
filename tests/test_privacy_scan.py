"""Nothing secret or personal leaves the process unredacted (architecture: security by default).

Runs the main CLI commands on one generated simulated card (``--sim card.json``) with
``--trace FILE`` and every logger at DEBUG: ``read`` (table, JSON, iReadCardBas, with
the PIN), ``pin verify`` (right and wrong PIN), ``identity check --scenario hotel``,
``transit tap``, ``medical settle ... --yes`` against the simulated platform over HTTP,
and ``sim show``; also error paths and the reprs of the objects that hold the secrets.
It then scans stdout, stderr, the trace files, the log records, the exception texts and
the reprs for the holder's full SSN, full name (UTF-8 and GBK, as bytes and hex), full
birth date, the PIN and the hex of the card's keys (masters and diversified card keys).
The ``--no-redact`` control shows the scan does find them when they are there.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from example_configs import EXAMPLES, bus_config, medical_config
from privacy_needles import card_keys, holder_spellings, named_card

from sscard.apdu.errors import PinIncorrect
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.applets.transit.purse import Purse
from sscard.cli import main
from sscard.services.insurance.outbox import Outbox
from sscard.services.journal import Journal
from sscard.simulators.card import build_card
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile
from sscard.terminals import Connection, SimulatorTransport

# Not a plausible date or time fragment (month/hour 97), so only a leak can put it in a scan.
PIN = "975319"


def holder_card() -> CardProfile:
    """An Anhui 3rd-generation card with a purse, a distinctive name and a distinctive PIN."""
    return named_card("anhui", 29, pin=PIN, balance=5_000)


def needles(profile: CardProfile) -> dict[str, bytes]:
    ef06 = profile.ssse.ef06
    out = holder_spellings(profile)
    born: date = ef06.birth_date
    out["birth date iso"] = born.isoformat().encode()
    out["birth date compact"] = born.strftime("%Y%m%d").encode()
    out["pin"] = PIN.encode()  # the BCD hex of the PIN is the same digits
    for label, key in card_keys(profile).items():
        out[f"key {label} hex"] = key.hex().encode()
        out[f"key {label} HEX"] = key.hex().upper().encode()
    return out


def leaks(blob: bytes, found: dict[str, bytes]) -> list[str]:
    return sorted(label for label, needle in found.items() if needle in blob)


def trace_blob(path: Path) -> bytes:
    """The trace lines minus the clock fields (time stamps and durations are not data)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record: dict[str, Any] = json.loads(line)
        record.pop("time", None)
        record.pop("duration_us", None)
        out.append(json.dumps(record, ensure_ascii=False))
    return "\n".join(out).encode("utf-8")


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SSCARD_INSURANCE_URL", "")
    for name in ("SSCARD_AUDIT_DB", "SSCARD_ECARD_REPLAY_DB", "SSCARD_IDENTITY_POLICY",
                 "SSCARD_MEDICAL_CONFIG", "SSCARD_READER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def sscard(*args: str, stdin: str | None = None) -> tuple[int, bytes]:
    result = CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes + result.stderr_bytes


def test_no_secret_or_personal_data_leaves_the_process(
    env: Path, platform: InsurancePlatform, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    profile = holder_card()
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    psn_no = platform.add_person_from_card(
        ef06.ssn, ef06.full_name, ef06.sex, ef06.birth_date, ef05.card_id.region,
        insuplc_admdvs="340100", card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    platform.add_filing(psn_no, "340100", "310000", date.today(), date(2099, 12, 31))
    card = env / "card.json"  # the card image holds the data by design: not scanned
    profile.save(card)
    traces = env / "traces"
    traces.mkdir()
    sim = ["--sim", str(card)]
    config = str(medical_config(env, platform.url))
    runs: list[tuple[list[str], str | None, int]] = [
        (["read"], None, 0),
        (["read", "--format", "json"], None, 0),
        (["read", "--format", "ireadcardbas"], None, 0),
        (["read", "--verify-pin", "--pin-stdin"], PIN + "\n", 0),
        (["read", "--json"], None, 0),
        (["pin", "verify", "--pin-stdin"], PIN + "\n", 0),
        (["pin", "verify", "--pin-stdin"], "000000\n", 1),
        (["pin", "verify", "--pin-stdin", "--json"], PIN + "\n", 0),
        (["auth"], None, 0),
        (["identity", "check", "--scenario", "hotel", "--no-audit"], None, 0),
        (["identity", "check", "--scenario", "hotel", "--json", "--no-audit"], None, 0),
        (["transit", "tap", "--config", str(bus_config(env)),
          "--psam-sim", str(env / "psam.json")], None, 0),
        (["transit", "balance"], None, 0),
        (["transit", "history", "--json"], None, 0),
        (["medical", "settle", "--items", str(EXAMPLES / "visit.csv"), "--yes",
          "--config", config], None, 0),
        (["medical", "settle", "--items", str(EXAMPLES / "visit.csv"), "--yes", "--json",
          "--config", config], None, 0),
    ]  # fmt: skip
    outputs: dict[str, bytes] = {}
    for i, (args, stdin, expected) in enumerate(runs):
        code, out = sscard(*args, *sim, "--trace", str(traces / f"{i}.jsonl"), stdin=stdin)
        assert code == expected, (args, out.decode("utf-8", "replace"))
        outputs[" ".join(args[:2])] = outputs.get(" ".join(args[:2]), b"") + out
    for args in (["sim", "show", str(card)], ["sim", "show", str(card), "--json"]):
        code, out = sscard(*args)
        assert code == 0, out
        outputs[" ".join(args)] = out

    # The objects that hold the secrets: their reprs and error texts.
    keys = default_key_set()
    conn = Connection(SimulatorTransport(build_card(profile)))
    conn.connect()
    reader = SsseReader(conn, SoftwareKeyProvider(keys))
    read = reader.read(verify_pin=PIN)
    assert read.holder is not None and read.holder.ssn == ef06.ssn  # the data was there
    reprs = [keys, keys.ssse, profile, profile.ssse, profile.ssse.pin, ef06, read, read.holder,
             reader, reader.keys, conn]  # fmt: skip
    outputs["reprs"] = "\n".join(repr(o) for o in reprs).encode("utf-8")
    with pytest.raises(PinIncorrect) as wrong:
        reader.verify_pin("000000")
    outputs["wrong PIN error"] = f"{wrong.value!r} {wrong.value} {wrong.value.args}".encode()
    purse = Purse(conn)
    purse.select()
    ef0016 = purse.read_ef0016()
    assert ef0016.holder_name == ef06.full_name  # the data was there
    reprs = [ef0016, purse]
    conn.close()
    with Journal(env / "bus.db") as journal:
        tap = journal.last_trip(profile.purse.ef0015.asn)  # type: ignore[union-attr]
        assert tap is not None
        reprs.append(tap)
    outbox = Outbox(env / "outbox.db", "H31010400001")
    try:
        rows = outbox.rows()
        assert rows
        reprs += rows
    finally:
        outbox.close()
    outputs["reprs 2"] = "\n".join(repr(o) for o in reprs).encode("utf-8")

    found = needles(profile)
    where: dict[str, list[str]] = {name: leaks(blob, found) for name, blob in outputs.items()}
    for path in sorted(traces.iterdir()):
        where[f"trace {path.name}"] = leaks(trace_blob(path), found)
    where["logs"] = leaks("\n".join(r.getMessage() for r in caplog.records).encode(), found)
    assert {w: what for w, what in where.items() if what} == {}
    assert len(list(traces.iterdir())) == len(runs)


def test_the_scan_finds_unredacted_data(env: Path) -> None:
    """Control: with --no-redact the scan reports the SSN, name and PIN in output and trace."""
    profile = holder_card()
    card = env / "card.json"
    profile.save(card)
    trace = env / "trace.jsonl"
    code, out = sscard("read", "--verify-pin", "--pin-stdin", "--sim", str(card), "--no-redact",
                       "--trace", str(trace), stdin=PIN + "\n")  # fmt: skip
    assert code == 0, out
    found = needles(profile)
    assert {"ssn utf-8", "full name utf-8", "birth date iso"} <= set(leaks(out, found))
    assert {"ssn utf-8 HEX", "name gbk HEX", "pin"} <= set(leaks(trace_blob(trace), found))
    code, out = sscard("sim", "show", str(card), "--no-redact")
    assert code == 0 and "pin" in leaks(out, found)
