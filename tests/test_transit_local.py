"""Local (non-interoperable) cards keep their composite record in SFI 19, not 1A.

reference §P1.3 (EF 0017 interoperability flag, SFI 19), §P5.4 ("Non-interoperable
(local) cards write the same structure to SFI 19 (80 DC 02 C8 80)") and the sscard
profile row "Metro composite record" (record 01, "Local cards use SFI 19"). Real
simulated card and PSAM, real SQLite journal (tests/test_transit_support.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from helpers import ok, run
from test_transit_support import SHANGHAI, Rig, metro, purse_state

from sscard.applets.transit import Purse, Refusal, TapAccepted, TapKind, TapRefused
from sscard.applets.transit.purse import composite_sfi
from sscard.cards.ids import (
    SFI_COMPOSITE,
    SFI_LOCAL_COMPOSITE,
    CompositeState,
    TxnType,
)
from sscard.cards.purse import CompositeRecord, Ef0017
from sscard.crypto import purse as pc
from sscard.services.journal import TapState
from sscard.simulators.base import CardWrapper, SimulatedCard
from sscard.simulators.card import build_card, load_card
from sscard.simulators.cos import CardOS
from sscard.simulators.faults import CardTorn, TearPoint, ins_is
from sscard.simulators.profile import CardProfile, new_card
from sscard.simulators.purse_applet import (
    VECTOR_KEY,
    find_purse,
    purse_card,
    sample_profile,
    vector_keys,
)
from sscard.terminals import Connection

H = bytes.fromhex
#: A pre-allocated, never written metro record: ``27 01 7D`` then zeros.
EMPTY_METRO = H("27017D") + bytes(125)
RND = H("11223344")
TERMINAL = H("001122334455")


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return Rig(tmp_path)


def accepted(result: object) -> TapAccepted:
    assert isinstance(result, TapAccepted), result
    return result


def refused(result: object, reason: Refusal) -> TapRefused:
    assert isinstance(result, TapRefused), result
    assert result.reason is reason, result
    return result


def raw_record(conn: Connection, apdu: str) -> bytes:
    """A raw READ RECORD in the purse ADF (e.g. ``00 B2 01 CC 00`` = record 01 of SFI 19)."""
    Purse(conn).select()
    answer = conn.transmit_raw(bytes.fromhex(apdu))
    assert answer[-2:] == b"\x90\x00", answer[-2:].hex()
    return answer[:-2]


def metro_19(conn: Connection) -> bytes:
    return raw_record(conn, "00 B2 01 CC 00")


def metro_1a(conn: Connection) -> bytes:
    return raw_record(conn, "00 B2 01 D4 00")


class Recorder(CardWrapper):
    """Passes APDUs to the simulated card and keeps every command sent."""

    def __init__(self, card: SimulatedCard) -> None:
        super().__init__(card)
        self.sent: list[bytes] = []

    def execute(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return super().execute(apdu)


def local_card(rig: Rig, province: str = "shanghai") -> CardProfile:
    return rig.profile(province, interoperable=False)


# --------------------------------------------------------------------------- the card


def test_new_local_card_is_a_non_interoperable_card_of_its_own_city(rig: Rig) -> None:
    profile = local_card(rig)
    assert profile.purse is not None
    ef15, ef17 = profile.purse.ef0015, profile.purse.ef0017
    assert ef17.interop_flag == 0x0000 and not ef17.interoperable
    assert ef15.city_code == SHANGHAI and ef15.issuer_id.hex().upper() == "01012900FFFFFFFF"
    assert composite_sfi(ef17) == SFI_LOCAL_COMPOSITE
    default = rig.profile("shanghai")  # same seed, default: the interoperable twin
    assert default.purse is not None and default.purse.ef0017.interop_flag == 0x0001
    assert composite_sfi(default.purse.ef0017) == SFI_COMPOSITE
    assert default.purse.ef0015 == ef15  # only the flag differs
    _, conn = rig.card(profile)
    assert metro_19(conn) == EMPTY_METRO  # EF 19 exists on the card, never written


def test_composite_sfi_follows_only_the_interoperability_flag() -> None:
    base = Ef0017(
        country_code="00000156", province_code="3100", city_code="3101", interop_flag=1,
        category=4,
    )  # fmt: skip
    assert composite_sfi(base) == 0x1A
    local = Ef0017.decode(base.encode()[:8] + b"\x00\x00" + base.encode()[10:])
    assert local.interop_flag == 0 and composite_sfi(local) == 0x19


def _bus_record() -> bytes:
    return CompositeRecord(
        record_id=2, txn_serial="0000000000001234", state=CompositeState.ENTERED,
        entry_city="2900", entry_institution=H("01012900FFFFFFFF"), entry_line=71,
        entry_stop=3, entry_vehicle="HU-A1234", entry_terminal=bytes(2) + TERMINAL,
        entry_time=datetime(2025, 3, 1, 8, 15), max_amount=300,
    ).encode()  # fmt: skip


def _debit(card: CardOS, record: bytes, *, good_mac: bool = True) -> tuple[bytes, int]:
    """8050 03 (amount 1.00), ``80 DC 02 C8 80`` <bus record> (§P5.4), 8054 (§P4.5 key)."""
    init = ok(card, "805003020B01 00000064" + TERMINAL.hex() + "0F")
    ok(card, "80DC02C880" + record.hex())
    counter = int.from_bytes(init[4:6], "big")
    sk = pc.purchase_session_key(
        VECTOR_KEY, card_random=init[11:15], offline_counter=counter, terminal_seq=1,
        algorithm=0,
    )  # fmt: skip
    dt = H("20250301081500")
    mac1 = pc.purchase_mac1(
        sk, amount=100, txn_type=9, terminal_id=TERMINAL, date_time=dt, algorithm=0
    )
    return run(card, f"805401000F00000001{dt.hex()}{(mac1 if good_mac else bytes(4)).hex()}08")


def test_sim_80dc_c8_is_committed_with_8054_only() -> None:
    """Raw APDUs on the simulated purse: P2 C8 (SFI 19) is cached like D0 (SFI 1A), lost
    with a failed 8054 (9302) or a tear before the commit, committed with a good one."""
    empty_bus = H("27027D") + bytes(125)
    card = purse_card(sample_profile(balance=1_000), vector_keys(), rng=lambda n: RND)
    ok(card, "00A4040008 A000000632010105 00")
    assert ok(card, "00B202CC00") == empty_bus and ok(card, "00B201CC00") == EMPTY_METRO
    assert run(card, "80DC02C880" + _bus_record().hex())[1] == 0x6901  # no 8050 open
    assert _debit(card, _bus_record(), good_mac=False)[1] == 0x9302
    assert ok(card, "00B202CC00") == empty_bus
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.BEFORE_COMMIT)
    with pytest.raises(CardTorn):
        _debit(card, _bus_record())
    card.reset()
    ok(card, "00A4040008 A000000632010105 00")
    assert ok(card, "00B202CC00") == empty_bus
    answer, sw = _debit(card, _bus_record())
    assert sw == 0x9000 and len(answer) == 8
    assert ok(card, "00B202CC00") == _bus_record()  # 80DC 02 C8 -> record 02 of SFI 19
    assert ok(card, "00B202D400") == empty_bus  # 1A untouched
    assert int.from_bytes(ok(card, "805C000204"), "big") == 900
    _, purse = find_purse(card)
    assert purse.state.offline_counter == 1


# --------------------------------------------------------------------------- the validator


def test_local_card_at_its_own_metro_uses_sfi_19(rig: Rig) -> None:
    """Entry: 80DC 01 C8 80, record 01 of SFI 19; 1A untouched. Second entry refused;
    exit charges the table fare from the entry read back from 19."""
    card, _ = rig.card(local_card(rig))
    rec = Recorder(card)
    conn = rig.connect(rec)
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 16, 17))

    first = accepted(entry.tap(conn))
    assert (first.kind, first.fare, first.balance) == (TapKind.ENTRY, 0, 10_000)
    updates = [a[:5].hex().upper() for a in rec.sent if a[:2] == b"\x80\xdc"]
    assert updates == ["80DC01C880", "80DC00F030"]  # composite to 19, then the 1E trip
    raw = metro_19(conn)
    assert raw[:3] == bytes.fromhex("27017D")
    on_card = CompositeRecord.decode(raw)
    assert on_card == first.composite
    assert (on_card.state, on_card.entry_line, on_card.entry_stop) == (CompositeState.ENTERED, 2, 5)
    assert on_card.entry_city == SHANGHAI and on_card.max_amount == 600
    assert metro_1a(conn) == EMPTY_METRO

    rig.advance(3)
    refused(entry.tap(conn), Refusal.ALREADY_ENTERED)  # the open entry is read from 19
    rig.advance(32)
    second = accepted(exit_.tap(conn))
    assert (second.kind, second.fare, second.balance) == (TapKind.EXIT, 600, 9_400)
    assert second.entry_station == "2-5"
    done = CompositeRecord.decode(metro_19(conn))
    assert (done.state, done.exit_line, done.exit_stop, done.fare) == (
        CompositeState.EXITED, 16, 17, 600,
    )  # fmt: skip
    assert metro_1a(conn) == EMPTY_METRO
    refused(exit_.tap(conn), Refusal.NO_ENTRY)
    balance, txns, _ = purse_state(conn)
    assert balance == 9_400 and [t.amount for t in txns[:2]] == [600, 0]
    assert [r.fare["composite_sfi"] for r in rig.rows()] == [0x19, 0x19]


def test_local_card_missed_tap_out_is_read_from_19(rig: Rig) -> None:
    _, conn = rig.card(local_card(rig))
    entry = rig.validator(metro("entry", 2, 5))
    accepted(entry.tap(conn))
    rig.advance(241)  # beyond max_trip_minutes: the 19 entry is stale, full flagged fare
    r = accepted(entry.tap(conn))
    assert (r.kind, r.fare, r.penalty, r.balance) == (TapKind.ENTRY, 600, True, 9_400)
    assert CompositeRecord.decode(metro_19(conn)).entry_time == rig.now


def test_interoperable_card_still_uses_1a(rig: Rig) -> None:
    _, conn = rig.card(rig.profile("shanghai"))
    r = accepted(rig.validator(metro("entry", 2, 5)).tap(conn))
    assert CompositeRecord.decode(metro_1a(conn)) == r.composite
    assert metro_19(conn) == EMPTY_METRO


def test_local_card_of_another_city_is_refused(rig: Rig) -> None:
    """A Jiangsu local card (Wuxi, city 3020) at a Shanghai gate: refused before 8050."""
    profile = local_card(rig, "jiangsu")
    assert profile.purse is not None and profile.purse.ef0015.city_code == "3020"
    _, conn = rig.card(profile)
    r = refused(rig.validator(metro("entry", 2, 5)).tap(conn), Refusal.NOT_INTEROPERABLE)
    assert r.asn == profile.purse.ef0015.asn
    assert rig.rows() == [] and purse_state(conn)[0] == 10_000
    assert metro_19(conn) == EMPTY_METRO and metro_1a(conn) == EMPTY_METRO
    # At home (Wuxi metro, 3020) the same card is local: SFI 19.
    accepted(rig.validator(metro("entry", 1, 3, city_code="3020")).tap(conn))
    assert CompositeRecord.decode(metro_19(conn)).entry_city == "3020"


@pytest.mark.parametrize(
    ("interoperable", "written", "untouched"),
    [(False, "00 B2 01 CC 00", "00 B2 01 D4 00"), (True, "00 B2 01 D4 00", "00 B2 01 CC 00")],
)
def test_tear_after_8054_commit_recovers_from_the_same_sfi(
    rig: Rig, interoperable: bool, written: str, untouched: str
) -> None:
    """§P5.7: the exit's 8054 answer is lost after the commit; 805A proves it, and the
    answer carries the record re-read from the file the torn tap wrote."""
    card, conn = rig.card(rig.profile("shanghai", interoperable=interoperable))
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 2, 10))
    accepted(entry.tap(conn))
    rig.advance(15)
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    refused(exit_.tap(conn), Refusal.DEBIT_UNCERTAIN)
    assert rig.rows()[-1].state == TapState.UNKNOWN
    conn.connect()
    r = accepted(exit_.tap(conn))
    assert (r.recovered, r.mac2_verified, r.kind, r.fare) == (True, True, TapKind.EXIT, 400)
    assert r.composite is not None and r.composite.state == CompositeState.EXITED
    assert CompositeRecord.decode(raw_record(conn, written)) == r.composite
    assert raw_record(conn, untouched) == EMPTY_METRO
    rows = rig.rows()
    assert [row.state for row in rows] == [TapState.COMPLETED] * 2
    assert rows[-1].fare["composite_sfi"] == (0x1A if interoperable else 0x19)
    balance, txns, _ = purse_state(conn)
    assert balance == 9_600 and [(t.txn_type, t.amount) for t in txns[:2]] == [
        (TxnType.CAPP_PURCHASE, 400), (TxnType.CAPP_PURCHASE, 0),
    ]  # fmt: skip


# --------------------------------------------------------------------------- the card image


def test_card_image_without_the_sfi_19_field_still_loads(tmp_path: Path) -> None:
    data = new_card("shanghai", seed=3).to_dict()
    del data["purse"]["local_composite_records"]  # an image written before SFI 19
    old = CardProfile.from_dict(data)
    assert old.purse is not None and old.purse.local_composite_records == {}
    conn = Rig.connect(build_card(old))
    assert metro_19(conn) == EMPTY_METRO


def test_sfi_19_records_survive_a_save_and_reload(rig: Rig, tmp_path: Path) -> None:
    path = tmp_path / "card.json"
    local_card(rig).save(path)
    conn = rig.connect(load_card(path))  # file-backed: every commit is saved
    r = accepted(rig.validator(metro("entry", 2, 5)).tap(conn))
    saved = CardProfile.load(path)
    assert saved.purse is not None
    assert saved.purse.local_composite_records == {1: r.composite}
    assert saved.purse.composite_records == {}
    assert CompositeRecord.decode(metro_19(rig.connect(load_card(path)))) == r.composite
