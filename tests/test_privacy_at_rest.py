"""Personal data at rest (regulation.md Art. 18): modes and retention.

- Every SQLite store (journal, outbox, audit log, replay cache, platform ledger) and
  its ``-wal``/``-shm`` is 0600 whatever the umask, and a store left 0644 by an older
  sscard is tightened when opened.
- The insurance outbox keeps requests byte-exact only until the day balances: a
  balanced reconciliation masks them (and the replies), the raw file no longer holds
  the holder's SSN, name or card number, and a later 2208 cancellation still works.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.medical import FrontDesk, PreSettlement, VisitPlan, read_identity
from sscard.files import create_private, open_private, private_umask, write_private
from sscard.services.audit import AuditLog
from sscard.services.insurance import ClientConfig, InsuranceClient, NoFilingCheck
from sscard.services.insurance.outbox import Outbox
from sscard.services.journal import Journal
from sscard.services.replay_cache import ReplayCache
from sscard.simulators.card import build_card
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.insurance_platform.ledger import Ledger
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FIXMEDINS = "H31010400001"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


STORES = {
    "journal": lambda p: Journal(p),
    "outbox": lambda p: Outbox(p, FIXMEDINS),
    "audit": lambda p: AuditLog(p),
    "replay cache": lambda p: ReplayCache(p),
    "ledger": lambda p: Ledger(p),
}


@pytest.mark.usefixtures("loose_umask")
@pytest.mark.parametrize("kind", sorted(STORES))
def test_every_store_and_its_wal_and_shm_are_0600(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.db"
    store = STORES[kind](path)
    try:
        files = sorted(tmp_path.iterdir())
        names = {p.name for p in files}
        assert {path.name, f"{path.name}-wal", f"{path.name}-shm"} <= names, names
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    finally:
        store.close()


@pytest.mark.usefixtures("loose_umask")
def test_a_store_made_world_readable_by_an_older_sscard_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    AuditLog(path).close()
    for p in tmp_path.iterdir():
        p.chmod(0o644)
    with AuditLog(path):
        assert {p.name: mode(p) for p in tmp_path.iterdir()} == {
            p.name: 0o600 for p in tmp_path.iterdir()
        }


@pytest.mark.usefixtures("loose_umask")
def test_private_file_helpers(tmp_path: Path) -> None:
    write_private(tmp_path / "a.txt", "x")
    write_private(tmp_path / "b.bin", b"x")
    with open_private(tmp_path / "c.log", "a") as fh:
        fh.write("x")
    create_private(tmp_path / "d.db")
    (tmp_path / "e.txt").write_text("old")  # 0644, then rewritten privately
    write_private(tmp_path / "e.txt", "new")
    with private_umask():
        (tmp_path / "f.png").write_bytes(b"x")
    (tmp_path / "g.txt").write_text("after")  # the umask is back
    modes = {p.name: mode(p) for p in tmp_path.iterdir()}
    assert modes == {"a.txt": 0o600, "b.bin": 0o600, "c.log": 0o600, "d.db": 0o600,
                     "e.txt": 0o600, "f.png": 0o600, "g.txt": 0o644}  # fmt: skip
    assert (tmp_path / "e.txt").read_text() == "new"


# --------------------------------------------------------------------------- outbox purge


def _desk(url: str, outbox: Path) -> FrontDesk:
    client = InsuranceClient(
        ClientConfig(url, FIXMEDINS, "徐汇测试诊所", "310000", timeout=3.0),
        outbox,
        sleep=lambda s: None,
    )
    return FrontDesk(client, filing_check=NoFilingCheck(), acct_used_flag="1")


def _yes(pre: PreSettlement) -> bool:
    return True


def _outbox_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_the_outbox_never_holds_the_personal_data_and_a_2208_still_works(
    platform: InsurancePlatform, tmp_path: Path
) -> None:
    """Every request and reply is masked when written (outbox.at_rest), so the
    data is not in the file before the day's reconciliation either; what later steps
    need (msgid, psn_no, setl_id, mdtrt_id, amounts) is, and a 2208 still works."""
    profile = new_card("shanghai", seed=21)
    ef05, ef06 = profile.ssse.ef05, profile.ssse.ef06
    platform.add_person_from_card(
        ef06.ssn, ef06.full_name, ef06.sex, ef06.birth_date, ef05.card_id.region,
        card_no=ef05.card_number, card_sn=ef05.card_id.hex,
    )  # fmt: skip
    conn = Connection(SimulatorTransport(build_card(profile)))
    conn.connect()
    card = read_identity(conn, SoftwareKeyProvider(default_key_set()))
    conn.close()
    outbox = tmp_path / "outbox.db"
    desk = _desk(platform.url, outbox)
    try:
        first = desk.settle(card, VisitPlan.from_file(EXAMPLES / "visit.csv"), confirm=_yes)
        desk.settle(card, VisitPlan.from_file(EXAMPLES / "visit.csv"), confirm=_yes)
        personal = {
            "ssn": ef06.ssn.encode(),
            "name": ef06.full_name.encode(),
            "card number": ef05.card_number.encode(),
            "card_sn": ef05.card_id.hex.encode(),
        }
        before = _outbox_bytes(outbox)
        assert b"2207" in before  # the rows are there
        assert {k for k, v in personal.items() if v in before} == set()
        report = desk.reconcile(date.today())
        assert report.balanced
        after = _outbox_bytes(outbox)
        assert {k for k, v in personal.items() if v in after} == set()
        # What later steps need is still there: a 2208 cancellation of the day works.
        result = desk.cancel(first.setl_id)
        assert result.steps == ("2208", "2205", "2202")
        assert desk.client.outbox.get(desk.client.outbox.rows(infno="2207")[0].msgid).setl_id
    finally:
        desk.client.close()


def test_requests_are_masked_when_written_and_the_purge_scrubs_old_rows(
    tmp_path: Path,
) -> None:
    """A new row is masked at once; a row an older outbox kept whole (for byte-exact
    resends) is masked by the purge of a balanced day, unless its outcome is unknown."""
    outbox = Outbox(tmp_path / "o.db", FIXMEDINS)
    try:
        envelope = {"infno": "2201", "input": {"data": {"certno": "11010519491231002X"}}}
        msgid, _ = outbox.create("2201", lambda m, now: {**envelope, "msgid": m})
        assert outbox.get(msgid).request_input["data"]["certno"] == "1101**********002X"
        assert outbox.purge_resend_data(date.today()) == 0  # nothing to rewrite
        old = f"{FIXMEDINS}20240101000000" + "0001"
        outbox._db.execute(
            "INSERT INTO outbox (msgid, infno, day, created_at, updated_at, state, request)"
            " VALUES (?, '2201', ?, '', '', 'unknown', ?)",
            (old, date.today().isoformat(), json.dumps({**envelope, "msgid": old})),
        )  # as an older outbox wrote it
        assert outbox.purge_resend_data(date.today()) == 0  # unknown rows may be resent
        assert outbox.get(old).request_input["data"]["certno"] == "11010519491231002X"
        outbox.finish(old, "done", response={"infcode": 0, "output": {}})
        assert outbox.purge_resend_data(date.today()) == 1
        assert outbox.get(old).request_input["data"]["certno"] == "1101**********002X"
    finally:
        outbox.close()
