"""The validator end to end in process: metro entry/exit, fares, refusals, recovery, load.

Real simulated card OS + PSAM, real SQLite journal (tests/test_transit_support.py).
References: reference §P1.3, §P2, §P5.3-§P5.7 and its sscard profile.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_transit_support import (
    TID,
    TODAY,
    Rig,
    Tampered,
    bus,
    metro,
    purse_state,
    with_category,
)

from sscard.apdu.errors import ConditionsNotSatisfied
from sscard.applets.transit import (
    LoadInterrupted,
    NoPurse,
    Psam,
    Purse,
    Refusal,
    TapAccepted,
    TapKind,
    TapRefused,
    Validator,
    ValidatorConfig,
    load,
)
from sscard.cards.ids import CompositeState, Industry, TripRecordType, TxnType
from sscard.services.grey import MasterTacChecker
from sscard.services.journal import TapState
from sscard.services.lists import Blacklist, TrustList
from sscard.simulators.card import build_card, load_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.keys import KeySet, default_key_set
from sscard.simulators.load_host import LoadHost
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport


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


# --------------------------------------------------------------------------- metro


def test_metro_entry_exit_with_a_card_from_another_province(rig: Rig) -> None:
    """A Jiangsu card (Wuxi, T-Union city 3020, interoperable) in Shanghai metro (2900)."""
    profile = rig.profile("jiangsu", balance=5_000)
    assert profile.purse is not None and profile.purse.ef0015.city_code == "3020"
    _, conn = rig.card(profile)
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 16, 17))

    first = accepted(entry.tap(conn))
    assert (first.kind, first.fare, first.balance) == (TapKind.ENTRY, 0, 5_000)
    assert first.composite is not None and first.composite.max_amount == 600  # row 2-5 max
    rig.advance(35)
    second = accepted(exit_.tap(conn))
    assert (second.kind, second.fare, second.balance) == (TapKind.EXIT, 600, 4_400)
    assert second.entry_station == "2-5" and second.station == "16-17"

    balance, txns, trips = purse_state(conn)
    assert balance == 4_400
    capp = TxnType.CAPP_PURCHASE
    assert [(t.txn_type, t.amount) for t in txns[:2]] == [(capp, 600), (capp, 0)]
    assert [(t.record_type, t.industry, t.amount) for t in trips[:2]] == [
        (TripRecordType.EP_EXIT, Industry.METRO, 600),
        (TripRecordType.EP_ENTRY, Industry.METRO, 0),
    ]
    assert trips[0].balance == 4_400 and trips[0].city_code == "2900"
    assert trips[0].institution_id[2:4] == bytes.fromhex("2900")  # where T-Union Master looks
    rec = Purse(conn)
    rec.select()
    comp = rec.composite(1)
    assert comp is not None and comp.state == CompositeState.EXITED
    assert (comp.entry_line, comp.entry_stop, comp.exit_line, comp.exit_stop) == (2, 5, 16, 17)
    assert comp.fare == 600 and comp.entry_vehicle == "G0205"
    rows = rig.rows()
    assert [(r.state, r.amount, r.txn_type) for r in rows] == [
        (TapState.COMPLETED, 0, 9),
        (TapState.COMPLETED, 600, 9),
    ]
    assert rows[1].balance_after == 4_400 and rows[1].fare["entry_station"] == "2-5"
    assert rows[1].card_counter == txns[0].counter  # the counter 8050 reported


def test_second_entry_refused_and_exit_without_entry_refused(rig: Rig, host_tz: str) -> None:
    _, conn = rig.card()
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 2, 10))
    refused(exit_.tap(conn), Refusal.NO_ENTRY)
    accepted(entry.tap(conn))
    rig.advance(3)
    refused(entry.tap(conn), Refusal.ALREADY_ENTERED)
    assert len(rig.rows()) == 1  # refusals never reach the journal
    accepted(exit_.tap(conn))
    refused(exit_.tap(conn), Refusal.NO_ENTRY)


def test_missed_tap_out_charges_the_flagged_fare_on_the_next_entry(rig: Rig, host_tz: str) -> None:
    """§P5.5: no tap-off -> the next boarding charges the flagged maximum, no discount."""
    _, conn = rig.card(with_category(rig.profile(), 2))  # a student: 50 % normally
    entry = rig.validator(metro("entry", 2, 5, policy=_policy(student=50)))
    accepted(entry.tap(conn))
    rig.advance(241)  # beyond max_trip_minutes (240): the old entry is stale
    r = accepted(entry.tap(conn))
    assert (r.kind, r.fare, r.penalty, r.discount) == (TapKind.ENTRY, 600, True, 0)
    assert r.balance == 10_000 - 600
    assert r.composite is not None and r.composite.entry_time == rig.now


def test_open_entry_in_another_city_is_not_charged(rig: Rig) -> None:
    _, conn = rig.card()
    nanjing = rig.validator(metro("entry", 1, 3, city_code="3010"))
    accepted(nanjing.tap(conn))
    rig.advance(30)
    r = accepted(rig.validator(metro("entry", 2, 5)).tap(conn))
    assert (r.fare, r.penalty) == (0, False)


def _policy(transfer: int = 0, window: int = 0, **pct: int) -> object:
    from sscard.applets.transit import FarePolicy
    from sscard.applets.transit.fares import CATEGORY_NAMES

    return FarePolicy({int(CATEGORY_NAMES[k]): v for k, v in pct.items()}, window, transfer)


def test_category_discount_student_and_elderly(rig: Rig) -> None:
    for category, expected in ((2, 100), (3, 0), (1, 200)):
        _, conn = rig.card(with_category(rig.profile(seed=category), category))
        v = rig.validator(bus(policy=_policy(student=50, elderly=100)))
        r = accepted(v.tap(conn))
        assert (r.fare, r.discount, r.category) == (expected, 200 - expected, category)


def test_transfer_window_discount(rig: Rig, host_tz: str) -> None:
    """Bus, then metro within 90 min: the metro fare is 1.00 less; outside: full."""
    policy = _policy(transfer=100, window=90)
    b = rig.validator(bus(policy=policy))
    entry = rig.validator(metro("entry", 2, 5, policy=policy))
    exit_ = rig.validator(metro("exit", 2, 10, policy=policy))
    _, conn = rig.card()
    assert not accepted(b.tap(conn)).transfer  # nothing before it
    rig.advance(60)
    accepted(entry.tap(conn))
    rig.advance(20)  # the window counts from the bus to the metro entry (60 min)
    r = accepted(exit_.tap(conn))
    assert (r.fare, r.transfer, r.discount) == (300, True, 100)
    rig.advance(10)
    assert accepted(b.tap(conn)).transfer  # metro exit -> bus, another mode: discount
    rig.advance(120)
    accepted(entry.tap(conn))
    rig.advance(10)
    r = accepted(exit_.tap(conn))
    assert (r.fare, r.transfer) == (400, False)  # bus leg 120 min before the entry


def test_simple_purchase_writes_no_trip_record(rig: Rig) -> None:
    _, conn = rig.card()
    r = accepted(rig.validator(bus(purchase="simple")).tap(conn))
    assert (r.kind, r.fare, r.trip) == (TapKind.SINGLE, 200, None)
    balance, txns, trips = purse_state(conn)
    assert balance == 9_800 and txns[0].txn_type == TxnType.EP_PURCHASE and trips == []
    assert rig.rows()[0].txn_type == 6


def test_bus_segment_auto_boards_then_alights(rig: Rig) -> None:
    v = rig.validator({**bus(), "mode": "bus-segment", "gate": "auto", "station": 5,
                       "line": 2, "fare": 0})  # fmt: skip
    v2 = rig.validator({**bus(), "mode": "bus-segment", "gate": "auto", "station": 17,
                        "line": 16, "fare": 0})  # fmt: skip
    _, conn = rig.card()
    assert accepted(v.tap(conn)).kind is TapKind.ENTRY
    rig.advance(10)
    r = accepted(v.tap(conn))  # same line, fresh boarding: alighting at 2-5
    assert (r.kind, r.fare) == (TapKind.EXIT, 300)
    refused(v.tap(conn), Refusal.ALREADY_PAID)  # repeat tap right after alighting (§P5.8)
    rig.advance(2)
    assert accepted(v.tap(conn)).kind is TapKind.ENTRY
    rig.advance(10)
    r = accepted(v2.tap(conn))  # another line while boarded: missed tap-off, board again
    assert (r.kind, r.penalty, r.fare) == (TapKind.ENTRY, True, 600)
    p = Purse(conn)
    p.select()
    assert p.composite(2) is not None and p.composite(1) is None  # bus record 02


# --------------------------------------------------------------------------- bad input


def test_card_without_purse_is_refused(rig: Rig) -> None:
    profile = rig.profile()
    profile.purse = None  # an SSSE-only card
    _, conn = rig.card(profile)
    refused(rig.validator(bus()).tap(conn), Refusal.NO_PURSE)
    with pytest.raises(NoPurse):
        Purse(conn).select()


@pytest.mark.parametrize(
    ("state", "reason"), [("expired", Refusal.EXPIRED), ("blocked", Refusal.BLOCKED)]
)
def test_expired_and_blocked_cards_are_refused(rig: Rig, state: str, reason: Refusal) -> None:
    _, conn = rig.card(rig.profile(state=state))
    refused(rig.validator(bus()).tap(conn), reason)


def test_blacklisted_card_is_refused_before_8050(rig: Rig) -> None:
    profile = rig.profile()
    assert profile.purse is not None
    asn = profile.purse.ef0015.asn
    bl = Blacklist.parse(["# sscard-blacklist/1 version=3 issued=2025-03-01", f"{asn} 01"])
    _, conn = rig.card(profile)
    r = refused(rig.validator(bus(), blacklist=bl).tap(conn), Refusal.BLACKLISTED)
    assert r.detail == "LOST" and r.asn == asn
    assert purse_state(conn)[0] == 10_000 and rig.rows() == []


def test_untrusted_issuer_and_non_interoperable_card(rig: Rig) -> None:
    only_anhui = TrustList.parse(["# sscard-trustlist/1 version=1 issued=2025-03-01", "340000"])
    _, conn = rig.card()
    refused(rig.validator(bus(), trustlist=only_anhui).tap(conn), Refusal.UNTRUSTED_ISSUER)
    profile = rig.profile()
    assert profile.purse is not None
    ef17 = dataclasses.replace(profile.purse.ef0017, interop_flag=0)
    profile.purse = dataclasses.replace(profile.purse, ef0017=ef17)
    _, conn = rig.card(profile)
    refused(rig.validator(bus()).tap(conn), Refusal.NOT_INTEROPERABLE)
    # The same card is fine in its home city (Wuxi, T-Union city 3020).
    accepted(rig.validator(bus(city_code="3020")).tap(conn))


def test_category_not_accepted(rig: Rig) -> None:
    _, conn = rig.card(with_category(rig.profile(), 4))  # a test card
    r = refused(rig.validator(bus(categories=frozenset({1, 2, 3}))).tap(conn), Refusal.CATEGORY)
    assert r.detail == "category 4"


def test_insufficient_balance_9401(rig: Rig) -> None:
    _, conn = rig.card(rig.profile(balance=150))
    refused(rig.validator(bus()).tap(conn), Refusal.INSUFFICIENT_BALANCE)
    assert rig.rows() == [] and purse_state(conn)[0] == 150


def foreign_keys() -> KeySet:
    """The TEST key set with every purse master flipped: another issuer's card."""
    ks = default_key_set()
    keys = {fam: {n: bytes(b ^ 0x5A for b in k) for n, k in names.items()}
            for fam, names in ks.purse.keys.items()}  # fmt: skip
    return dataclasses.replace(ks, purse=dataclasses.replace(ks.purse, keys=keys))


def test_tampered_card_keys_give_9302_at_8054(rig: Rig) -> None:
    """A card personalised with other keys rejects the PSAM's MAC1 (9302): nothing taken."""
    _, conn = rig.card(keys=foreign_keys())
    r = refused(rig.validator(bus()).tap(conn), Refusal.MAC_INVALID)
    assert r.detail == "SW 9302"
    [row] = rig.rows()
    assert row.state == TapState.FAILED and row.fail_reason == "8054 SW 9302"
    assert purse_state(conn)[0] == 10_000


def test_tampered_mac2_fails_at_the_psam(rig: Rig) -> None:
    card = build_card(rig.profile(), rig.keys)
    conn = Connection(SimulatorTransport(Tampered(card))).connect()  # type: ignore[arg-type]
    r = refused(rig.validator(bus()).tap(conn), Refusal.MAC2_INVALID)
    assert r.detail == "SW 9302"
    [row] = rig.rows()
    assert row.state == TapState.FAILED and row.fail_reason == "8072: MAC2 invalid"


def test_algorithm_policy_refuses_before_8070(rig: Rig) -> None:
    _, conn = rig.card(rig.profile(purse_algorithm=0x04))  # SM4 card
    before = _psam_seq(rig)
    r = refused(rig.validator(bus(algorithms=frozenset({0x00}))).tap(conn), Refusal.ALGORITHM)
    assert r.detail == "ID 04" and _psam_seq(rig) == before and rig.rows() == []
    accepted(rig.validator(bus()).tap(conn))  # SM4 allowed by default (profile)
    assert _psam_seq(rig) == before + 1


def _psam_seq(rig: Rig) -> int:
    from sscard.simulators.psam import PsamApplet

    for df in rig.psam_card.mf.walk():
        if isinstance(df.applet, PsamApplet):
            return df.applet.image.next_seq
    raise AssertionError("no PSAM applet")


def test_3des_card_works_too(rig: Rig) -> None:
    _, conn = rig.card(rig.profile(purse_algorithm=0x00))
    assert accepted(rig.validator(bus()).tap(conn)).balance == 9_800


# --------------------------------------------------------------------------- recovery


def test_tear_after_commit_is_recovered_on_the_next_tap(rig: Rig) -> None:
    card, conn = rig.card()
    entry, exit_ = rig.validator(metro("entry", 2, 5)), rig.validator(metro("exit", 2, 10))
    accepted(entry.tap(conn))
    rig.advance(15)
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    refused(exit_.tap(conn), Refusal.DEBIT_UNCERTAIN)
    assert rig.rows()[-1].state == TapState.UNKNOWN
    conn.connect()
    r = accepted(exit_.tap(conn))
    assert (r.recovered, r.mac2_verified, r.fare, r.kind) == (True, True, 400, TapKind.EXIT)
    assert purse_state(conn)[0] == 9_600  # charged once
    assert [row.state for row in rig.rows()] == [TapState.COMPLETED] * 2
    refused(exit_.tap(conn), Refusal.NO_ENTRY)  # the exit did happen on the card


def test_tear_before_commit_fails_the_row_and_taps_again(rig: Rig) -> None:
    card, conn = rig.card()
    v = rig.validator(bus())
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.BEFORE_COMMIT)
    refused(v.tap(conn), Refusal.DEBIT_UNCERTAIN)
    conn.connect()
    r = accepted(v.tap(conn))
    assert not r.recovered and r.balance == 9_800
    states = [(row.state, row.fail_reason) for row in rig.rows()]
    assert states == [
        (TapState.FAILED, "805A SW 9406; card counter still 0: not debited"),
        (TapState.COMPLETED, None),
    ]


def test_another_card_while_a_recovery_is_pending(rig: Rig) -> None:
    a, conn_a = rig.card(rig.profile(seed=1))
    _, conn_b = rig.card(rig.profile(seed=2))
    v = rig.validator(bus())
    a.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    refused(v.tap(conn_a), Refusal.DEBIT_UNCERTAIN)
    assert accepted(v.tap(conn_b)).balance == 9_800  # served normally
    assert rig.journal.pending_for_card(rig.rows()[0].asn) is not None
    conn_a.connect()
    r = accepted(v.tap(conn_a))
    # The PSAM's 8070 context now belongs to card B: MAC2 cannot be checked here and
    # no TAC key is at hand. The card's EF 0018 shows this debit, so the trip counts,
    # but the row is grey (uncertain), its 805A answer kept unverified for clearing.
    assert (r.recovered, r.mac2_verified, r.uncertain, r.balance) == (True, False, True, 9_800)
    rows = rig.rows()
    assert [row.state for row in rows] == [TapState.UNCERTAIN, TapState.COMPLETED]
    assert rows[0].tac is None and rows[0].proof_tac is not None
    assert rows[0].grey_reason == "EF 0018 shows this debit; 805A proof unverified"
    assert purse_state(conn_a)[0] == 9_800


def test_recovery_with_the_tac_key_at_hand_completes(rig: Rig) -> None:
    """Same as above with the TEST key set's TAC masters: the TAC over the row's own
    data proves the debit, the row completes (MAC2 still unverified)."""
    a, conn_a = rig.card(rig.profile(seed=1))
    _, conn_b = rig.card(rig.profile(seed=2))
    v = rig.validator(bus(), tac_checker=MasterTacChecker.from_key_set(rig.keys))
    a.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    refused(v.tap(conn_a), Refusal.DEBIT_UNCERTAIN)
    accepted(v.tap(conn_b))
    conn_a.connect()
    r = accepted(v.tap(conn_a))
    assert (r.recovered, r.mac2_verified, r.uncertain) == (True, False, False)
    assert [row.state for row in rig.rows()] == [TapState.COMPLETED] * 2


def test_tear_during_recovery_keeps_the_row_unknown(rig: Rig) -> None:
    card, conn = rig.card()
    v = rig.validator(bus())
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    refused(v.tap(conn), Refusal.DEBIT_UNCERTAIN)
    conn.connect()
    card.faults.tear_on(ins_is(0x5A, 0x80), TearPoint.BEFORE_COMMIT)
    refused(v.tap(conn), Refusal.CARD_REMOVED)
    assert rig.rows()[0].state == TapState.UNKNOWN
    conn.connect()
    assert accepted(v.tap(conn)).recovered
    assert purse_state(conn)[0] == 9_800


def test_recovery_after_restart_with_a_reloaded_card_image(rig: Rig, tmp_path: Path) -> None:
    """Validator and card both restart: the proof survives in the image (last_proof)."""
    path = tmp_path / "card.json"
    rig.profile().save(path)
    card = load_card(path)
    conn = rig.connect(card)
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.AFTER_COMMIT)
    refused(rig.validator(bus()).tap(conn), Refusal.DEBIT_UNCERTAIN)
    # A new process: card from its file, a fresh validator on the same journal.
    conn2 = rig.connect(load_card(path))
    rig.psam_conn.reconnect(reset=True)  # the PSAM lost power too: its 8070 context is gone
    rig.psam = Psam(rig.psam_conn).open()
    fresh = rig.validator(bus())
    r = accepted(fresh.tap(conn2))
    assert (r.recovered, r.mac2_verified, r.balance) == (True, False, 9_800)
    assert purse_state(conn2)[0] == 9_800
    assert rig.rows()[0].state == TapState.UNCERTAIN  # no session, no key: clearing settles


def test_pending_rows_become_unknown_at_start(rig: Rig) -> None:
    card, conn = rig.card()
    v = rig.validator(bus())
    card.faults.tear_on(ins_is(0x54, 0x80), TearPoint.BEFORE_COMMIT)
    refused(v.tap(conn), Refusal.DEBIT_UNCERTAIN)
    with rig.journal._write() as c:  # as if the process died before mark_unknown
        c.execute("UPDATE taps SET state = 'pending'")
    rig.validator(bus())
    assert rig.rows()[0].state == TapState.UNKNOWN


# --------------------------------------------------------------------------- reader, load


def test_purse_reader_files_balance_and_counters(rig: Rig) -> None:
    profile = rig.profile("zhejiang", balance=2_345)
    assert profile.purse is not None
    _, conn = rig.card(profile)
    p = Purse(conn)
    entries = p.select_ppse().entries
    assert entries[0].label == b"MOT_T_EP"
    ef15 = p.select()
    assert ef15 == profile.purse.ef0015 == p.read_ef0015()
    assert p.read_ef0017() == profile.purse.ef0017
    assert p.read_ef0016().id_number == profile.purse.ef0016.id_number
    assert p.balance() == 2_345
    assert p.balances().usable == 2_345
    assert p.counters().online == 1 and p.counters().offline == 0
    assert [t.amount for t in p.transactions()] == [2_345]
    assert p.trips() == [] and p.composite(1) is None and p.composite(2) is None


def test_balance_masks_bit_31(rig: Rig) -> None:
    card = build_card(rig.profile(balance=1_000), rig.keys)

    class HighBit(Tampered):
        def execute(self, apdu: bytes) -> bytes:
            answer = self.card.execute(apdu)
            if apdu[:2] == b"\x80\x5c":
                return bytes([answer[0] | 0x80]) + answer[1:]
            return answer

    conn = Connection(SimulatorTransport(HighBit(card))).connect()  # type: ignore[arg-type]
    p = Purse(conn)
    p.select()
    assert p.balance() == 1_000


def test_load_through_the_load_host(rig: Rig, host_tz: str) -> None:
    _, conn = rig.card(rig.profile(balance=1_000))
    result = load(conn, 5_000, LoadHost(rig.keys), terminal_id=TID, clock=rig.clock)
    assert (result.balance_before, result.balance, result.tac_verified) == (1_000, 6_000, True)
    p = Purse(conn)
    p.select()
    assert p.balance() == 6_000
    log = p.transactions()[0]
    assert (log.txn_type, log.amount, log.terminal_id, log.time) == (2, 5_000, TID, rig.now)
    with pytest.raises(ConditionsNotSatisfied):  # above the maximum balance (profile): 6985
        load(conn, 100_000, LoadHost(rig.keys), terminal_id=TID)


def test_load_torn_at_credit_raises_load_interrupted(rig: Rig) -> None:
    card, conn = rig.card(rig.profile(balance=1_000))
    card.faults.tear_on(ins_is(0x52, 0x80), TearPoint.AFTER_COMMIT)
    with pytest.raises(LoadInterrupted) as info:
        load(conn, 500, LoadHost(rig.keys), terminal_id=TID)
    assert "check the balance" in info.value.message_en
    conn.connect()
    assert purse_state(conn)[0] == 1_500


def test_validator_from_the_example_configs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent / "examples"
    cfg = ValidatorConfig.load(root / "validator-metro.toml")
    assert (cfg.mode, cfg.gate, str(cfg.here), cfg.city_code) == ("metro", "entry", "2-5", "2900")
    assert cfg.fare_table is not None and cfg.fare_table.fare(cfg.here, cfg.here) == 300
    exit_cfg = ValidatorConfig.load(root / "validator-metro-exit.toml")
    assert exit_cfg.gate == "exit" and str(exit_cfg.here) == "16-17"
    assert ValidatorConfig.load(root / "validator-bus.toml").fare == 200
    assert cfg.psam_terminal_id is not None
    rig = Rig(tmp_path, tid=cfg.psam_terminal_id)
    v = Validator(dataclasses.replace(cfg, journal_path=tmp_path / "m.db"), rig.psam,
                  clock=rig.clock)  # fmt: skip
    _, conn = rig.card(new_card("jiangsu", seed=5, today=TODAY, balance=900))
    assert accepted(v.tap(conn)).kind is TapKind.ENTRY
    v.close()
