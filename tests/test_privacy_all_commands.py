"""Every CLI command, in every output format, with default options: nothing personal shown.

Regulation Art. 18 (personal data at terminals): one masking policy
(sscard.cards.privacy) for every output path. A module fixture runs each leaf command
of ``sscard`` (the list is checked against the click tree, so a new command cannot be
forgotten) in its text form, with ``--json`` and in its other formats (``read --format
json|ireadcardbas``) against one simulated card with a distinctive name and PIN; each
(command, format) is then its own test that scans stdout and stderr for the holder's
full SSN, name (UTF-8/GBK, text and hex), birth date, card number (EF05 07), card
identification code (32 hex), purse ASN, PIN (old and new), the e-SSC holder
reference, the retired SM3(SSN) digest, and the hex of every master and card key.
The ``--no-redact`` control shows the scan finds them when they are shown.

Commands that need pcscd (``readers``, ``monitor``) are run here without it (one
error line); ``test_pcsc_paths_mask_too`` runs them and ``read -r`` with a private
pcscd and the card in a vpcd reader.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from example_configs import EXAMPLES, bus_config, medical_config
from helpers import SIGINT_DEFAULT, insurance_platform_process
from privacy_needles import card_keys, holder_spellings, named_card

import sscard
from sscard.cli import main
from sscard.cli.serve import make_serve_command
from sscard.crypto import sm3
from sscard.simulators.card import build_card
from sscard.simulators.ecard_issuer import IssuerKey
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.profile import CardProfile

PIN, NEW_PIN = "975319", "864208"  # month/hour 97/86: no date or time contains them


def holder_card() -> CardProfile:
    return named_card("anhui", 31, pin=PIN, balance=5_000)


def needles(profile: CardProfile, holder_ref: bytes | None = None) -> dict[str, bytes]:
    """Everything that must not be shown whole, in every spelling a leak could take."""
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    out = holder_spellings(profile)
    out["birth date iso"] = ef06.birth_date.isoformat().encode()
    out["birth date compact"] = ef06.birth_date.strftime("%Y%m%d").encode()
    out["card number"] = ef05.card_number.encode()
    out["card id"] = ef05.card_id.hex.upper().encode()
    out["card id lower"] = ef05.card_id.hex.lower().encode()
    out["ssn sm3 (payload v01)"] = sm3(ef06.ssn.encode())[:16].hex().upper().encode()
    if profile.purse is not None:
        out["asn"] = profile.purse.ef0015.asn.encode()
    if ef06.ssn != profile.ssse.pin.pin:
        out["pin"] = profile.ssse.pin.pin.encode()
    out["new pin"] = NEW_PIN.encode()
    if holder_ref is not None:
        out["holder ref"] = holder_ref.hex().upper().encode()
    for label, key in card_keys(profile).items():
        out[f"key {label}"] = key.hex().upper().encode()
    return out


def leaks(blob: bytes, found: dict[str, bytes]) -> list[str]:
    low = blob.lower()
    return sorted(
        label
        for label, needle in found.items()
        if needle in blob or (needle.isascii() and needle.lower() in low and len(needle) >= 16)
    )


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> set[str]:
    out: set[str] = set()
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out |= leaf_commands(cmd, (*prefix, name))
        else:
            out.add(" ".join((*prefix, name)))
    return out


@dataclasses.dataclass
class Run:
    command: str  # the leaf command, e.g. "identity qr verify"
    fmt: str  # "text", "json", "ireadcardbas", ...
    code: int
    output: bytes
    needles: dict[str, bytes]


class Harness:
    """Runs the commands in order (state flows: a tap feeds the journal, a settlement
    the reconciliation) and keeps every output."""

    def __init__(self, work: Path, platform: InsurancePlatform) -> None:
        self.work = work
        self.platform = platform
        self.runs: list[Run] = []
        self.profile = holder_card()
        self.card = work / "card.json"
        self.profile.save(self.card)
        self.issuer = IssuerKey.generate()
        self.issuer.save(work / "issuer.json")
        self.holder_ref = self.issuer.holder_reference(self.profile.ssse.ef06.ssn)
        self.needles = needles(self.profile, self.holder_ref)

    def sscard(
        self,
        command: str,
        *args: str,
        fmt: str = "text",
        stdin: str | None = None,
        expect: tuple[int, ...] = (0,),
        sim: bool = True,
    ) -> bytes:
        argv = [*command.split(), *args]
        if sim:
            argv += ["--sim", str(self.card)]
        if fmt == "json":
            argv.append("--json")
        result = CliRunner().invoke(main, argv, input=stdin, catch_exceptions=False)
        out = result.stdout_bytes + result.stderr_bytes
        assert result.exit_code in expect, (argv, out.decode("utf-8", "replace"))
        self.runs.append(Run(command, fmt, result.exit_code, out, self.needles))
        return result.stdout_bytes

    def both(self, command: str, *args: str, **kw: object) -> list[bytes]:
        return [self.sscard(command, *args, fmt=fmt, **kw) for fmt in ("text", "json")]  # type: ignore[arg-type]


def run_all(h: Harness) -> None:
    w = h.work
    h.both("version", sim=False)
    h.both("apdu decode", "00B2010C00", sim=False)
    h.both("apdu decode-response", "9000", sim=False)
    # SELECT SSSE, then EF05 records 01 (card id) and 07 (card number): answers redacted.
    select = "00A404000F7378312E73682EC9E7BBE1B1A3D5CF"
    h.both("apdu send", f"{select};00B2012C00;00B2072C00")
    h.both("atr", h.profile.ssse.atr.hex(), sim=False)
    h.both("doctor", sim=False, expect=(0, 1))
    h.both("readers", sim=False, expect=(0, 1, 3))
    h.both("monitor", "--count", "1", "--timeout", "0.1", sim=False, expect=(0, 1, 3))

    # sim: new (its own card: needles of that card), show, serve, ecard issue
    for fmt in ("text", "json"):
        other = w / f"new-{fmt}.json"
        h.sscard("sim new", "--province", "jiangsu", "--seed", "5", "-o", str(other),
                 fmt=fmt, sim=False)  # fmt: skip
        h.runs[-1].needles = needles(CardProfile.load(other))
    h.both("sim show", str(h.card), sim=False)
    h.both("sim set", str(h.card), "--balance", "5000", sim=False)
    h.sscard("sim psam new", "--terminal-id", "000000000099", "-o", str(w / "psam99.json"),
             fmt="text", sim=False)  # fmt: skip
    h.both("sim psam show", str(w / "psam99.json"), sim=False)
    h.both("sim ecard issue", str(h.card), "--issuer-key", str(w / "issuer.json"),
           "--png", str(w / "qr.png"), sim=False)  # fmt: skip

    # the front desk: read in all its formats, PIN, card authentication
    h.both("read")
    h.sscard("read", "--format", "json", fmt="format-json")
    h.sscard("read", "--format", "ireadcardbas", fmt="ireadcardbas")
    h.sscard("read", "--verify-pin", "--pin-stdin", fmt="text+pin", stdin=PIN + "\n")
    h.sscard("pin verify", "--pin-stdin", stdin=PIN + "\n")
    h.sscard("pin verify", "--pin-stdin", fmt="json", stdin=PIN + "\n")
    h.sscard("pin verify", "--pin-stdin", fmt="text-wrong", stdin="000000\n", expect=(1,))
    h.sscard("pin change", "--pin-stdin", stdin=f"{PIN}\n{NEW_PIN}\n")
    h.sscard("pin change", "--pin-stdin", fmt="json", stdin=f"{NEW_PIN}\n{PIN}\n")
    h.both("auth")

    # identity: card, e-SSC QR (check and verify), audit
    h.both("identity check", "--scenario", "hotel")
    for fmt in ("text", "json"):
        payload = h.sscard(
            "sim ecard issue", str(h.card), "--issuer-key", str(w / "issuer.json"), sim=False
        )
        h.runs.pop()  # already scanned above
        code = payload.decode().strip().splitlines()[-1]
        h.sscard("identity check", "--scenario", "gate", "--qr", code,
                 "--ecard-trust", str(w / "issuer.json"), fmt=f"qr-{fmt}", sim=False)  # fmt: skip
        h.runs[-1].fmt = f"qr {fmt}"
    for fmt in ("text", "json"):
        payload = h.sscard(
            "sim ecard issue", str(h.card), "--issuer-key", str(w / "issuer.json"), sim=False
        )
        h.runs.pop()
        code = payload.decode().strip().splitlines()[-1]
        h.sscard("identity qr verify", code, "--trust", str(w / "issuer.json"), fmt=fmt, sim=False)
    h.both("identity audit", sim=False)

    # transit: tap (writes the journal), balance, history, load, validator
    config, psam = str(bus_config(w, repeat_tap_seconds=0)), str(w / "psam.json")
    h.both("transit tap", "--config", config, "--psam-sim", psam)
    h.both("transit balance")
    h.both("transit history")
    h.both("transit load", "10")
    h.both("validator run", "--config", config, "--psam-sim", psam, "--taps", "1")
    exported = h.sscard(
        "journal export", "--db", str(w / "bus.db"), "-o", str(w / "c.csv"), fmt="json", sim=False
    )
    h.sscard("journal ack", "--db", str(w / "bus.db"), json.loads(exported)["batch_id"], sim=False)
    h.sscard("journal export", "--db", str(w / "bus.db"), "-o", str(w / "d.csv"), sim=False)
    h.sscard("journal ack", "--db", str(w / "bus.db"), "nope", fmt="json", sim=False,
             expect=(1, 2, 6))  # fmt: skip
    h.both("journal purge", "--db", str(w / "bus.db"), "--older-than-days", "30", sim=False)

    # clearing: the bus journal's Parquet upload cleared with the TEST keys; a small fleet
    uploads = w / "uploads"
    uploads.mkdir()
    h.sscard("journal export", "--db", str(w / "bus.db"), "--format", "parquet", "-o",
             str(uploads / "bus.parquet"), "--config", config, sim=False)  # fmt: skip
    keys = w / "test-keys.json"
    keys.write_bytes((Path(sscard.__file__).parent / "data" / "test-keys.json").read_bytes())
    h.both("clearing run", "--input", str(uploads), "--keys", str(keys), "--out",
           str(w / "cleared"), sim=False)  # fmt: skip
    for fmt in ("text", "json"):
        h.sscard("sim fleet", "--validators", "60", "--cards", "40", "--out",
                 str(w / f"fleet-{fmt}"), fmt=fmt, sim=False)  # fmt: skip

    # trace show: a trace recorded with --no-redact is shown redacted by default
    raw = w / "raw.jsonl"
    h.sscard("read", "--verify-pin", "--pin-stdin", "--no-redact", "--trace", str(raw),
             stdin=PIN + "\n", fmt="control")  # fmt: skip
    h.runs.pop()  # --no-redact: not a default-options run
    h.both("trace show", str(raw), sim=False)

    # medical: settle, cancel, reconcile against the simulated platform over HTTP
    med = ["--config", str(medical_config(w, h.platform.url))]
    items = ["--items", str(EXAMPLES / "visit.csv"), "--yes"]
    receipt = ["--receipt", str(w / "receipt.json")]
    receipts = [
        h.sscard("medical settle", *items, *med, *receipt, fmt=fmt) for fmt in ("text", "json")
    ]
    setl_id = json.loads(receipts[1])["setl_id"]
    h.sscard("medical reconcile", *med, sim=False, expect=(0, 5))
    h.sscard("medical cancel", setl_id, *med, fmt="json", sim=False)
    h.sscard("medical reconcile", *med, fmt="json", sim=False, expect=(0, 5))
    h.sscard("medical cancel", "no-such-settlement", *med, sim=False, expect=(1, 2, 4, 5))
    h.both("medical recover", *med, sim=False)

    # sim serve (stops at once: no vpcd listening) and sim insurance serve (a process)
    stop = threading.Event()
    stop.set()
    serve = make_serve_command(until=stop)
    for fmt in ("text", "json"):
        argv = [str(h.card), "--port", "1"] + (["--json"] if fmt == "json" else [])
        result = CliRunner().invoke(serve, argv, catch_exceptions=False)
        h.runs.append(Run("sim serve", fmt, result.exit_code, result.output.encode(), h.needles))
    for fmt in ("text", "json"):
        h.runs.append(Run("sim insurance serve", fmt, 0, insurance_serve(h, fmt), h.needles))
    for fmt in ("text", "json"):
        h.runs.append(Run("serve", fmt, 0, reader_service(h, fmt), h.needles))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reader_service(h: Harness, fmt: str) -> bytes:
    """``sscard serve`` (the browser reader service) with the card: its console and the
    answers of a local program's read and hotel check (default: masked)."""
    port = free_port()
    args = ["serve", "--sim", str(h.card), "--port", str(port),
            "--audit-db", str(h.work / f"serve-audit-{fmt}.db")]  # fmt: skip
    args += ["--json"] if fmt == "json" else []
    code = SIGINT_DEFAULT + f"from sscard.cli import main; main({args!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    answers = b""
    try:
        headers = {"Host": f"127.0.0.1:{port}", "X-SSCard-Request": "1",
                   "Content-Type": "application/json"}  # fmt: skip
        deadline = time.monotonic() + 30
        for path, body in (("/v1/card/read", b"{}"),
                           ("/v1/identity/check", b'{"scenario": "hotel"}')):  # fmt: skip
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("POST", path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                    break
                except ConnectionRefusedError:
                    assert time.monotonic() < deadline, "sscard serve did not start"
                    time.sleep(0.1)
            assert resp.status == 200, data
            answers += data + b"\n"
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    read = json.loads(answers.splitlines()[0])
    assert read["masked"] is True and read["card"]["holder"]["ssn"], read  # it was read
    return out + err + answers


def insurance_serve(h: Harness, fmt: str) -> bytes:
    url_file = h.work / f"url-{fmt}.txt"
    args = ["--enrol", str(h.card), "--filing-to", "310000", "--db", str(h.work / f"l-{fmt}.db")]
    args += ["--json"] if fmt == "json" else []
    with insurance_platform_process(args, url_file, text=False) as served:
        assert served.url
    assert served.returncode == 0, served.err
    return bytes(served.out + served.err)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    work = tmp_path_factory.mktemp("privacy")
    old_umask = os.umask(0o022)  # the usual umask: files are private by sscard's doing
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSCARD_STATE_DIR", str(work / "state"))
        mp.setenv("SSCARD_INSURANCE_URL", "")
        for name in ("SSCARD_AUDIT_DB", "SSCARD_ECARD_REPLAY_DB", "SSCARD_IDENTITY_POLICY",
                     "SSCARD_MEDICAL_CONFIG", "SSCARD_READER", "SSCARD_ECARD_TRUST",
                     "SSCARD_ECARD_ISSUER_KEY", "SSCARD_TERMINAL_ID"):  # fmt: skip
            mp.delenv(name, raising=False)
        mp.chdir(work)
        with InsurancePlatform(work / "ledger.db") as platform:
            h = Harness(work, platform)
            ef05, ef06 = h.profile.ssse.ef05, h.profile.ssse.ef06
            psn_no = platform.add_person_from_card(
                ef06.ssn, ef06.full_name, ef06.sex, ef06.birth_date, ef05.card_id.region,
                insuplc_admdvs="340100", card_no=ef05.card_number, card_sn=ef05.card_id.hex,
            )  # fmt: skip
            platform.add_filing(psn_no, "340100", "310000", date.today(), date(2099, 12, 31))
            try:
                run_all(h)
            finally:
                os.umask(old_umask)
            yield h


@pytest.fixture(scope="module")
def runs(harness: Harness) -> list[Run]:
    return harness.runs


#: Files the test itself writes as input (configurations); everything else is sscard's.
TEST_INPUTS = {"medical.toml", "bus.toml", "test-keys.json"}


def test_every_file_the_commands_create_is_private(harness: Harness) -> None:
    """Every file the project creates (card images, key files, PSAM image, trace,
    QR image, receipt, clearing files, journal, outbox, audit log, replay cache, ledgers
    and their -wal/-shm, URL files) is 0600, with the usual umask 022."""
    files = [p for p in harness.work.rglob("*") if p.is_file() and p.name not in TEST_INPUTS]
    names = {p.name for p in files}
    for expected in ("card.json", "issuer.json", "psam.json", "raw.jsonl", "qr.png",
                     "receipt.json", "c.csv", "bus.db", "outbox.db", "ledger.db-wal",
                     "ledger.db", "l-text.db", "url-text.txt", "new-text.json"):  # fmt: skip
        assert expected in names, f"{expected} was not created: {sorted(names)}"
    assert any(p.parent.name == "state" for p in files), "no audit/replay state written"
    loose = {str(p.relative_to(harness.work)): oct(stat.S_IMODE(p.stat().st_mode))
             for p in files if stat.S_IMODE(p.stat().st_mode) != 0o600}  # fmt: skip
    assert loose == {}


#: (command, format) pairs the harness runs; each is one test below.
CASES = [
    (c, f)
    for c in sorted(
        {
            "version",
            "apdu decode",
            "apdu decode-response",
            "apdu send",
            "atr",
            "doctor",
            "readers",
            "monitor",
            "sim new",
            "sim show",
            "sim set",
            "sim psam show",
            "sim ecard issue",
            "read",
            "auth",
            "pin verify",
            "pin change",
            "identity check",
            "identity qr verify",
            "identity audit",
            "transit tap",
            "transit balance",
            "transit history",
            "transit load",
            "validator run",
            "trace show",
            "sim serve",
            "sim insurance serve",
            "serve",
            "clearing run",
            "sim fleet",
        }
    )
    for f in ("text", "json")
] + [
    ("sim psam new", "text"),
    ("read", "format-json"),
    ("read", "ireadcardbas"),
    ("read", "text+pin"),
    ("pin verify", "text-wrong"),
    ("identity check", "qr text"),
    ("identity check", "qr json"),
    ("journal export", "text"),
    ("journal export", "json"),
    ("journal ack", "text"),
    ("journal ack", "json"),
    ("journal purge", "text"),
    ("journal purge", "json"),
    ("medical settle", "text"),
    ("medical settle", "json"),
    ("medical cancel", "text"),
    ("medical cancel", "json"),
    ("medical reconcile", "text"),
    ("medical reconcile", "json"),
    ("medical recover", "text"),
    ("medical recover", "json"),
]


def test_every_command_is_covered() -> None:
    assert leaf_commands(main) == {c for c, _ in CASES}


@pytest.mark.parametrize(("command", "fmt"), CASES, ids=[f"{c} [{f}]" for c, f in CASES])
def test_no_personal_data_with_default_options(runs: list[Run], command: str, fmt: str) -> None:
    matching = [r for r in runs if r.command == command and r.fmt == fmt]
    assert matching, f"{command} [{fmt}] was not run"
    for run in matching:
        assert run.output.strip(), f"{command} [{fmt}] printed nothing"
        assert leaks(run.output, run.needles) == [], run.output.decode("utf-8", "replace")


def test_the_scan_finds_what_is_shown(tmp_path: Path) -> None:
    """Control: with --no-redact the same commands show what the scan looks for."""
    profile = holder_card()
    card = tmp_path / "card.json"
    profile.save(card)
    found = needles(profile)
    shown: set[str] = set()
    for args in (["read"], ["read", "--format", "ireadcardbas"], ["sim", "show", str(card)],
                 ["transit", "balance"]):  # fmt: skip
        extra = ["--sim", str(card)] if args[0] != "sim" else []
        result = CliRunner().invoke(main, [*args, *extra, "--no-redact"])
        assert result.exit_code == 0, result.output
        shown |= set(leaks(result.stdout_bytes, found))
    assert {"ssn utf-8", "full name utf-8", "birth date iso", "birth date compact",
            "card number", "card id", "asn", "pin"} <= shown  # fmt: skip


@pytest.mark.pcsc
def test_pcsc_paths_mask_too(vreader, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """``readers``, ``monitor`` and ``read -r`` with the card in a real PC/SC reader."""
    monkeypatch.delenv("SSCARD_READER_IGNORE", raising=False)
    profile = holder_card()
    vreader.insert(build_card(profile))
    found = needles(profile)
    runs = [["readers"], ["readers", "--json"],
            ["monitor", "--count", "2", "--timeout", "5", "-r", vreader.name],
            ["read", "-r", vreader.name], ["read", "-r", vreader.name, "--json"],
            ["read", "-r", vreader.name, "--format", "ireadcardbas"],
            ["transit", "balance", "-r", vreader.name]]  # fmt: skip
    for argv in runs:
        result = CliRunner().invoke(main, argv, catch_exceptions=False)
        assert result.exit_code in (0, 1), (argv, result.output)
        assert leaks(result.stdout_bytes + result.stderr_bytes, found) == [], result.output
    result = CliRunner().invoke(main, ["read", "-r", vreader.name, "--no-redact"])
    assert "card id" in leaks(result.stdout_bytes, found)  # the control: it was read
    assert os.environ.get("SSCARD_READER") is None
