"""Beijing time whatever the host's time zone (reference §P5.8 "Time").

Metrodroid (``ChinaTransitData``, ``MetroTimeZone.BEIJING``) and T-Union Master read
every card date-time as Beijing time, and the TAC covers those digits; so a validator
on a UTC or a Los Angeles host must write +08:00 digits, fare rules must count in
that clock, and the journal must keep an unambiguous instant. Each test runs under
TZ=UTC, Asia/Shanghai and America/Los_Angeles (``host_tz``, tests/conftest.py); one
runs the tap in three subprocesses with those TZs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from test_transit_support import TID, Rig, bus, metro

from sscard import clock
from sscard.applets.transit import Purse, Refusal, TapAccepted, TapRefused, load
from sscard.cards.ids import SFI_TRIP, SFI_TXN_LOG
from sscard.crypto import purse as pc
from sscard.simulators.card import build_card
from sscard.simulators.load_host import LoadHost

H = bytes.fromhex
#: 00:47:05 UTC = 08:47:05 in Beijing, 16:47:05 the day before in Los Angeles.
INSTANT = datetime(2025, 3, 1, 0, 47, 5, tzinfo=UTC)
DIGITS = "20250301084705"


def _fixed_rng(n: int) -> bytes:
    return bytes(range(1, n + 1))


def _tap_at(rig: Rig, algorithm: int) -> tuple[bytes, bytes, bytes, str]:
    """One composite bus tap at INSTANT: EF 18 record, 1E record, TAC, journal text."""
    profile = rig.profile("shanghai", purse_algorithm=algorithm)
    card = build_card(profile, rig.keys, rng=_fixed_rng)
    conn = rig.connect(card)
    result = rig.validator(bus(), clock=lambda: INSTANT).tap(conn)
    assert isinstance(result, TapAccepted), result
    purse = Purse(conn)
    purse.select()
    ef18, ef1e = purse.read_record(SFI_TXN_LOG, 1), purse.read_record(SFI_TRIP, 1)
    assert ef18 is not None and ef1e is not None
    [row] = rig.rows()
    assert row.tac is not None
    with rig.journal._write() as c:
        stored = c.execute("SELECT txn_datetime FROM taps").fetchone()[0]
    return ef18, ef1e, row.tac, stored


@pytest.mark.parametrize("algorithm", [0x00, 0x04], ids=["3des", "sm4"])
def test_a_tap_at_a_fixed_instant_writes_beijing_digits_and_tac(
    tmp_path: Path, host_tz: str, algorithm: int
) -> None:
    rig = Rig(tmp_path)
    ef18, ef1e, tac, stored = _tap_at(rig, algorithm)
    assert ef18[16:23] == H(DIGITS) and ef1e[25:32] == H(DIGITS)
    profile = rig.profile("shanghai", purse_algorithm=algorithm)
    assert profile.purse is not None
    ef15 = profile.purse.ef0015
    dtk = rig.keys.purse_card_key("MTK", ef15.issuer_id, ef15.asn_right8, algorithm)
    expected = pc.purchase_tac(
        dtk, amount=200, txn_type=0x09, terminal_id=TID, terminal_seq=1,
        date_time=H(DIGITS), algorithm=algorithm,
    )  # fmt: skip
    assert tac == expected  # the TAC covers the Beijing digits
    assert stored == "2025-03-01T08:47:05+08:00"  # an unambiguous instant
    assert rig.rows()[0].txn_instant == INSTANT


_SCRIPT = """
import sys, tempfile
from datetime import UTC, datetime
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from test_transit_support import Rig, bus
from sscard.applets.transit import Purse
from sscard.simulators.card import build_card
with tempfile.TemporaryDirectory() as tmp:
    rig = Rig(Path(tmp))
    card = build_card(rig.profile("anhui"), rig.keys, rng=lambda n: bytes(n))
    conn = rig.connect(card)
    rig.validator(bus(), clock=lambda: datetime(2025, 3, 1, 0, 47, 5, tzinfo=UTC)).tap(conn)
    p = Purse(conn); p.select()
    print(p.read_record(0x18, 1).hex(), p.read_record(0x1E, 1).hex(), rig.rows()[0].tac.hex())
"""


def test_the_same_card_bytes_and_tac_in_three_host_time_zones(tmp_path: Path) -> None:
    """Separate processes, TZ set before Python starts."""
    outputs = {}
    here = str(Path(__file__).resolve().parent)
    for zone in ("UTC", "Asia/Shanghai", "America/Los_Angeles"):
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT, here], capture_output=True, text=True, timeout=60,
            env={**os.environ, "TZ": zone}, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs[zone] = done.stdout.split()
    assert len({tuple(v) for v in outputs.values()}) == 1, outputs
    ef18 = H(outputs["UTC"][0])
    assert ef18[16:23] == H(DIGITS)


def test_the_default_clock_is_beijing_time(tmp_path: Path, host_tz: str) -> None:
    assert clock.now().utcoffset() == timedelta(hours=8)
    rig = Rig(tmp_path)
    _, conn = rig.card(rig.profile(balance=1_000))
    before = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)
    result = rig.validator(bus(), clock=clock.now).tap(conn)
    after = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=8)
    assert isinstance(result, TapAccepted), result
    written = Purse(conn)
    written.select()
    when = written.transactions()[0].time
    assert before.replace(microsecond=0) <= when <= after


def test_transfer_window_counts_real_minutes_across_a_dst_change(
    tmp_path: Path, host_tz: str
) -> None:
    """Los Angeles springs forward at 10:00 UTC on 2025-03-09: a bus at 09:30 UTC and a
    metro entry at 10:30 UTC are 60 minutes apart (local clocks there say 120)."""
    from sscard.applets.transit import FarePolicy

    policy = FarePolicy({}, transfer_window_minutes=90, transfer_discount=100)
    rig = Rig(tmp_path)
    now = [datetime(2025, 3, 9, 9, 30, tzinfo=UTC)]
    _, conn = rig.card()
    rig.validator(bus(policy=policy), clock=lambda: now[0]).tap(conn)
    now[0] += timedelta(hours=1)
    rig.validator(metro("entry", 2, 5, policy=policy), clock=lambda: now[0]).tap(conn)
    now[0] += timedelta(minutes=20)
    r = rig.validator(metro("exit", 2, 10, policy=policy), clock=lambda: now[0]).tap(conn)
    assert isinstance(r, TapAccepted) and (r.transfer, r.fare) == (True, 300)


def test_validity_dates_are_beijing_dates(tmp_path: Path, host_tz: str) -> None:
    """17:00 UTC on the expiry day is already the next day in Beijing: expired."""
    rig = Rig(tmp_path)
    profile = rig.profile()
    assert profile.purse is not None
    expiry = profile.purse.ef0015.expiry_date
    _, conn = rig.card(profile)
    late = datetime.combine(expiry, datetime.min.time(), tzinfo=UTC) + timedelta(hours=17)
    r = rig.validator(bus(), clock=lambda: late).tap(conn)
    assert isinstance(r, TapRefused) and r.reason is Refusal.EXPIRED
    early = late - timedelta(hours=8)  # 09:00 UTC = 17:00 Beijing, still the expiry day
    assert isinstance(rig.validator(bus(), clock=lambda: early).tap(conn), TapAccepted)


def test_repeat_tap_window_in_real_seconds(tmp_path: Path, host_tz: str) -> None:
    rig = Rig(tmp_path)
    now = [INSTANT]
    v = rig.validator(bus(), clock=lambda: now[0])
    _, conn = rig.card()
    assert isinstance(v.tap(conn), TapAccepted)
    now[0] += timedelta(seconds=59)
    r = v.tap(conn)
    assert isinstance(r, TapRefused) and r.reason is Refusal.ALREADY_PAID
    assert (r.text_en, r.text_zh) == ("already paid", "请勿重复刷卡")
    now[0] += timedelta(seconds=1)
    assert isinstance(v.tap(conn), TapAccepted)
    assert [row.amount for row in rig.rows()] == [200, 200]


def test_a_load_writes_beijing_time(tmp_path: Path, host_tz: str) -> None:
    rig = Rig(tmp_path)
    _, conn = rig.card(rig.profile(balance=1_000))
    result = load(conn, 500, LoadHost(rig.keys), terminal_id=TID, clock=lambda: INSTANT)
    assert result.tac_verified
    p = Purse(conn)
    p.select()
    assert p.transactions()[0].time == datetime(2025, 3, 1, 8, 47, 5)


def test_clock_helpers() -> None:
    naive = datetime(2025, 3, 1, 8, 47, 5, 123)
    assert clock.wall(naive) == datetime(2025, 3, 1, 8, 47, 5)  # naive = Beijing already
    assert clock.wall(INSTANT) == datetime(2025, 3, 1, 8, 47, 5)
    assert clock.isoformat(naive.replace(microsecond=0)) == "2025-03-01T08:47:05+08:00"
    assert clock.parse_instant("2025-03-01T00:47:05+00:00") == INSTANT
    assert clock.parse_instant("2025-03-01T08:47:05") == INSTANT  # no offset: Beijing
    assert isinstance(clock.today(), date)


def test_journal_rows_written_before_the_instant_format_still_read(tmp_path: Path) -> None:
    """Older journals stored the 14 card digits; they are Beijing wall-clock time."""
    rig = Rig(tmp_path)
    _, conn = rig.card()
    assert isinstance(rig.validator(bus(), clock=lambda: INSTANT).tap(conn), TapAccepted)
    with rig.journal._write() as c:
        c.execute("UPDATE taps SET txn_datetime = ?", (DIGITS,))
    row = rig.rows()[0]
    assert row.txn_datetime == datetime(2025, 3, 1, 8, 47, 5) and row.txn_instant == INSTANT
