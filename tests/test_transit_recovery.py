"""Tearing recovery across validators, each with its own PSAM and journal.

The cases of the issue, each a test: (a) a debit committed at A, ten taps at B, back
at A; (b) 8054 torn before the card at A, A's PSAM context lost, the card pays at B,
back at A; (c) as (b) with A's PSAM still holding its context. Then the card that
contradicts itself (tampered), a debit rotated out of EF 0018 by loads, and the
public counterpart: CardLan's bus firmware ``SecondDebitChas`` (805A with N + 1, MAC2
to PSAM 8072, redo from 8050 on an SW), replayed as raw APDUs against the simulated
card and PSAM. The clearing side settles every grey row (sscard.services.grey).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from helpers import run
from test_transit_support import Lane, Rig, Tampered, accepted, bus, purse_state, refused

from sscard.applets.transit import Purse, Refusal, load
from sscard.services.grey import MasterTacChecker, Verdict, settle_uncertain
from sscard.services.journal import TapState
from sscard.simulators.card import build_card
from sscard.simulators.faults import TearPoint, ins_is
from sscard.simulators.load_host import LoadHost
from sscard.terminals import Connection, SimulatorTransport

A_TID, B_TID = bytes.fromhex("310000000001"), bytes.fromhex("310000000002")
DEBIT = ins_is(0x54, 0x80)


@pytest.fixture
def rig(tmp_path: Any) -> Rig:
    return Rig(tmp_path)


def lanes(rig: Rig, **a_kw: Any) -> tuple[Lane, Lane]:
    a = Lane(rig, "A", A_TID, bus(fare=300, line=71), **a_kw)
    b = Lane(rig, "B", B_TID, bus(fare=200, line=72))
    return a, b


def tap(lane: Lane, conn: Connection, rig: Rig) -> Any:
    rig.advance(2)  # taps of one card minutes apart (no repeat-tap window in play)
    return lane.tap(conn)


def no_foreign_proof(rig: Rig, *lanes_: Lane) -> None:
    """Every completed row's TAC verifies over that row's own data (TEST keys)."""
    checker = MasterTacChecker.from_key_set(rig.keys)
    for lane in lanes_:
        for row in lane.rows():
            if row.state is TapState.COMPLETED:
                assert checker.check(row, row.tac) is True, row


def money_balances(conn: Connection, start: int, *lanes_: Lane) -> None:
    """Money taken from the card = completed rows + grey rows clearing settles as debited."""
    balance = purse_state(conn)[0]
    asn = Purse(conn).select().asn
    rows = [r for lane in lanes_ for r in lane.rows() if r.asn.hex().upper() == asn]
    grey = [r for r in rows if r.state is TapState.UNCERTAIN]
    verdicts = [settle_uncertain(r, rows) for r in grey]
    assert all(v.verdict is not Verdict.PENDING for v in verdicts), verdicts
    done = sum(r.amount for r in rows if r.state is TapState.COMPLETED)
    assert start - balance == done + sum(v.row.amount for v in verdicts if v.debited)


# --------------------------------------------------------------------------- (a)


def test_a_debit_rotated_out_after_ten_taps_elsewhere_is_uncertain_not_failed(rig: Rig) -> None:
    a, b = lanes(rig)
    card, conn = rig.card()
    card.faults.tear_on(DEBIT, TearPoint.AFTER_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    for _ in range(10):
        accepted(tap(b, conn, rig))
    r = accepted(tap(a, conn, rig))
    assert (r.recovered, r.fare) == (False, 300)  # a new trip, charged as such
    torn = a.rows()[0]
    assert torn.state is TapState.UNCERTAIN and torn.fail_reason is None
    assert torn.grey_reason == "805A SW 9406; card counter 11 > N 0; EF 0018 lacks 0"
    assert torn.tac is None and torn.proof_tac is None  # nothing of B's on A's row
    assert a.journal is not None and a.journal.pending_for_card(torn.asn) is None
    balance = purse_state(conn)[0]
    assert balance == 10_000 - 300 - 10 * 200 - 300
    # Clearing: B's first tap (counter N + 1) read EF 0018 record 1 = A's debit.
    settled = settle_uncertain(torn, a.rows() + b.rows())
    assert (settled.verdict, settled.code) == (Verdict.DEBITED, "11")
    money_balances(conn, 10_000, a, b)
    no_foreign_proof(rig, a, b)


# --------------------------------------------------------------------------- (b)


@pytest.mark.parametrize("loss", ["another card", "restart", "psam reset"])
@pytest.mark.parametrize("tac_key", [False, True], ids=["no key", "tac key"])
def test_b_foreign_proof_never_completes_the_row(rig: Rig, loss: str, tac_key: bool) -> None:
    checker = MasterTacChecker.from_key_set(rig.keys) if tac_key else None
    a, b = lanes(rig, tac_checker=checker)
    card, conn = rig.card(rig.profile(seed=1))
    card.faults.tear_on(DEBIT, TearPoint.BEFORE_COMMIT)  # 8054 never reached the purse
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    if loss == "another card":
        _, other = rig.card(rig.profile(seed=2))
        accepted(tap(a, other, rig))
    elif loss == "restart":
        a.restart()
    else:
        a.lose_psam_context()
    accepted(tap(b, conn, rig))  # the card pays 200 at B with counter N
    r = accepted(tap(a, conn, rig))
    assert (r.recovered, r.fare, r.balance) == (False, 300, 10_000 - 200 - 300)
    torn = a.rows()[0]
    assert torn.state is TapState.FAILED and torn.tac is None
    assert torn.fail_reason is not None and B_TID.hex().upper() in torn.fail_reason
    assert purse_state(conn)[0] == 10_000 - 200 - 300
    no_foreign_proof(rig, a, b)
    money_balances(conn, 10_000, a, b)


# --------------------------------------------------------------------------- (c)


def test_c_genuine_card_with_a_foreign_proof_is_not_refused_as_tampered(rig: Rig) -> None:
    a, b = lanes(rig)
    card, conn = rig.card()
    card.faults.tear_on(DEBIT, TearPoint.BEFORE_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    accepted(tap(b, conn, rig))
    assert a.psam.holds_context_for(a.rows()[0])  # A's PSAM still holds the torn session
    r = accepted(tap(a, conn, rig))  # 8072 rejects B's MAC2; EF 0018 says counter N is B's
    assert (r.recovered, r.fare) == (False, 300)
    torn = a.rows()[0]
    assert torn.state is TapState.FAILED
    assert torn.fail_reason == (
        f"805A proof is another debit at counter 0 (terminal {B_TID.hex().upper()}"
        f" {b.rows()[0].txn_datetime:%Y%m%d%H%M%S} 200)"
    )
    no_foreign_proof(rig, a, b)
    money_balances(conn, 10_000, a, b)


def test_a_card_contradicting_itself_is_refused_and_left_grey(rig: Rig) -> None:
    """A wrong MAC2 under this debit's own session while EF 0018 shows this very debit:
    the one case recovery calls a card tampered. The row is grey, never failed."""
    a, _ = lanes(rig)
    card = build_card(rig.profile(), rig.keys)
    conn = Connection(SimulatorTransport(Tampered(card))).connect()  # type: ignore[arg-type]
    card.faults.tear_on(DEBIT, TearPoint.AFTER_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    refused(tap(a, conn, rig), Refusal.MAC2_INVALID)
    torn = a.rows()[0]
    assert torn.state is TapState.UNCERTAIN
    assert torn.grey_reason == "EF 0018 shows this debit; 805A MAC2 invalid"
    assert torn.proof_mac2 == bytes(4)  # the card's (bad) answer, kept for clearing


def test_proof_of_a_debit_rotated_out_by_loads_is_kept_for_clearing(rig: Rig) -> None:
    a, _ = lanes(rig)
    card, conn = rig.card(rig.profile(balance=1_000))
    card.faults.tear_on(DEBIT, TearPoint.AFTER_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    conn.connect()
    for _ in range(10):  # ten loads push the debit out of EF 0018; 805A still proves it
        load(conn, 100, LoadHost(rig.keys), terminal_id=B_TID, clock=rig.clock)
    a.restart()  # and A's PSAM session is gone
    r = accepted(tap(a, conn, rig))
    assert (r.recovered, r.fare) == (False, 300)
    torn = a.rows()[0]
    assert torn.state is TapState.UNCERTAIN and torn.proof_tac is not None
    assert torn.grey_reason == "805A proof for 1; EF 0018 lacks counter 0"
    # Without the key clearing cannot decide yet: the next tap saw a load in record 1.
    assert settle_uncertain(torn, a.rows()).verdict is Verdict.PENDING
    # The issuer (TAC key holder) checks the kept TAC over the row's own data.
    checker = MasterTacChecker.from_key_set(rig.keys)
    assert settle_uncertain(torn, a.rows(), tac_checker=checker).verdict is Verdict.DEBITED
    assert purse_state(conn)[0] == 1_000 - 300 + 1_000 - 300


# --------------------------------------------------------------------------- CardLan (S6)


def cardlan_next_counter(offline_sn: bytes) -> bytes:
    """CardLan ``SecondDebitChas``: ``(offlineSN[0]<<8 | offlineSN[1] + 1)``. In C ``+``
    binds before ``|`` and ``<<``, so the carry out of the low byte is ORed, not added."""
    value = (offline_sn[0] << 8) | (offline_sn[1] + 1)
    return bytes([(value & 0xFF00) >> 8, value & 0xFF])


@pytest.mark.parametrize("psam_reset", [True, False], ids=["InitPsam resets", "no reset"])
def test_cardlan_second_debit_flow_on_the_simulated_card_and_psam(
    rig: Rig, psam_reset: bool
) -> None:
    """CardLan's recovery while the card is still in the field (``SecondDebitChas``):
    ``InitPsam`` (PSAM open, baud rate, cold reset) and ``GetPsamID_ex`` (EF 16, select
    the PSAM DF, key index); card reset; SELECT AID as a case-3 command; then
    ``80 5A 00 09 02 <N+1> 08``. 9000: MAC2 = bytes 0-3, TAC = 4-7, and step 6 sends
    ``80 72 00 00 04 MAC2`` up to twice; any other SW: consume again from 8050."""
    a, _ = lanes(rig)
    card, conn = rig.card()
    card.faults.tear_on(DEBIT, TearPoint.AFTER_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    torn = a.rows()[0]
    if psam_reset:
        a.psam_card.power_on()  # InitPsam: cold reset
    run(a.psam_card, "00B0960006")  # GetPsamID_ex (CardLan selects DF 8011; sscard 1001)
    run(a.psam_card, "00A40000021001")
    run(a.psam_card, "00B0970001")
    card.power_on()  # CardReset
    run(card, "00A4040008A000000632010105")  # apdu_cmd_select_APP: no Le
    assert torn.txn_type == 0x09  # CardLan's composite purchase: 805A P2 = 09
    n = torn.card_counter.to_bytes(2, "big")
    data, sw = run(card, "805A000902" + cardlan_next_counter(n).hex() + "08")
    assert sw == 0x9000 and len(data) == 8
    mac2, tac = data[:4], data[4:]
    step6 = [run(a.psam_card, "8072000004" + mac2.hex())[1] for _ in range(2)]
    # A cold reset takes the 8070 session with it: 8072 cannot verify after InitPsam.
    # CardLan's step 6 leaves its loop at the first failing 8072 and goes on as success
    # (t++): the MAC2 never decides there. sscard does not rely on that (see docs).
    assert step6 == ([0x6901, 0x6901] if psam_reset else [0x9000, 0x6901])
    # The TAC is this debit's either way: the key holder can prove it (reference §K5).
    assert MasterTacChecker.from_key_set(rig.keys).check(torn, tac) is True


def test_sscard_recovery_keeps_the_psam_session_it_checks_with(rig: Rig) -> None:
    """Sscard never resets the PSAM between 8070 and the recovery's 8072: the same card
    back at once is proven by MAC2, the row completed with the card's own TAC."""
    a, _ = lanes(rig)
    card, conn = rig.card()
    card.faults.tear_on(DEBIT, TearPoint.AFTER_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    r = accepted(tap(a, conn, rig))
    assert (r.recovered, r.mac2_verified, r.uncertain, r.balance) == (True, True, False, 9_700)
    [row] = a.rows()
    assert row.state is TapState.COMPLETED
    assert MasterTacChecker.from_key_set(rig.keys).check(row, row.tac) is True


def test_cardlan_sw_means_consume_again_and_sscard_agrees(rig: Rig) -> None:
    a, _ = lanes(rig)
    card, conn = rig.card()
    card.faults.tear_on(DEBIT, TearPoint.BEFORE_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    card.power_on()
    run(card, "00A4040008A000000632010105")
    n = a.rows()[0].card_counter.to_bytes(2, "big")
    assert run(card, "805A000902" + cardlan_next_counter(n).hex() + "08")[1] == 0x9406
    r = accepted(tap(a, conn, rig))  # sscard: proven not debited, then a fresh purchase
    assert (r.recovered, r.balance) == (False, 9_700)
    assert [row.state for row in a.rows()] == [TapState.FAILED, TapState.COMPLETED]


def test_counter_carry_where_cardlan_and_the_reference_disagree(rig: Rig) -> None:
    """N = 0x01FF: the reference (§P5.7) says N + 1 = 0x0200; CardLan's expression gives
    0x0100, which the card refuses, so CardLan would charge again. sscard sends 0x0200."""
    assert cardlan_next_counter(b"\x01\xff") == b"\x01\x00"
    assert cardlan_next_counter(b"\x00\xff") == b"\x01\x00"  # right by luck when hi is even
    a, _ = lanes(rig)
    profile = rig.profile()
    assert profile.purse is not None
    profile.purse = dataclasses.replace(profile.purse, offline_counter=0x01FF)
    card, conn = rig.card(profile)
    card.faults.tear_on(DEBIT, TearPoint.AFTER_COMMIT)
    refused(tap(a, conn, rig), Refusal.DEBIT_UNCERTAIN)
    card.power_on()
    run(card, "00A4040008A000000632010105")
    assert run(card, "805A000902" + "0100" + "08")[1] == 0x9406  # CardLan's counter
    assert run(card, "805A000902" + "0200" + "08")[1] == 0x9000  # N + 1
    r = accepted(tap(a, conn, rig))
    assert (r.recovered, r.mac2_verified, r.balance) == (True, True, 9_700)
