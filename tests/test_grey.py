"""Settling grey (uncertain) rows from the card's other transactions (sscard.services.grey).

Hand-made journal rows, one rule per test (reference §K6 and its sscard profile "Grey at
counter N"); the end-to-end cases are in test_transit_recovery.py and the chaos test.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from sscard.services.grey import MasterTacChecker, Verdict, row_key, settle_uncertain
from sscard.services.journal import CardTxn, TapRecord, TapState

ASN = bytes.fromhex("03105170010170907984")
A, B = bytes.fromhex("310000000001"), bytes.fromhex("310000000002")
T0 = datetime(2025, 3, 1, 8, 0)


def row(tid: bytes, seq: int, counter: int, *, state: TapState = TapState.COMPLETED,
        amount: int = 300, before: int = 10_000, minutes: int = 0,
        previous: CardTxn | None = None, **kw: object) -> TapRecord:  # fmt: skip
    return TapRecord(
        id=seq, state=state, created_at=T0, updated_at=T0, terminal_id="V",
        psam_terminal_id=tid, terminal_seq=seq, asn=ASN, issuer_id=bytes(8), txn_type=9,
        amount=amount, balance_before=before, card_counter=counter,
        txn_datetime=T0 + timedelta(minutes=minutes), previous=previous,
        grey_reason="torn" if state is TapState.UNCERTAIN else None, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def as_txn(r: TapRecord) -> CardTxn:
    return CardTxn(r.card_counter, r.txn_type, r.amount, r.psam_terminal_id, r.txn_datetime)


GREY = row(A, 1, 5, state=TapState.UNCERTAIN)


def test_next_tap_saw_this_debit_in_ef18() -> None:
    nxt = row(B, 1, 6, before=9_700, minutes=5, previous=as_txn(GREY))
    s = settle_uncertain(GREY, [GREY, nxt])
    assert (s.verdict, s.code, s.debited) == (Verdict.DEBITED, "11", True)


def test_next_tap_saw_another_debit_at_n() -> None:
    other = row(B, 9, 5, minutes=3, amount=200)
    nxt = row(B, 10, 6, before=9_800, minutes=5, previous=as_txn(other), state=TapState.FAILED,
              fail_reason="SW 9401")  # fmt: skip
    s = settle_uncertain(GREY, [nxt])  # even a failed row's EF 0018 read is evidence
    assert (s.verdict, s.code) == (Verdict.NOT_DEBITED, "12")
    assert B.hex().upper() in s.reason


def test_a_completed_row_at_n_voids_the_grey_row() -> None:
    s = settle_uncertain(GREY, [row(B, 3, 5, minutes=4, amount=200)])
    assert s.verdict is Verdict.NOT_DEBITED


def test_balance_chain_when_no_ef18_evidence() -> None:
    nxt = row(B, 4, 6, before=9_700, minutes=5)  # no previous recorded
    assert settle_uncertain(GREY, [nxt]).verdict is Verdict.DEBITED
    rival = row(B, 5, 5, state=TapState.UNCERTAIN, minutes=1)  # another grey row at N
    assert settle_uncertain(GREY, [nxt, rival]).verdict is Verdict.PENDING
    after_load = dataclasses.replace(nxt, balance_before=10_700)  # a load in between
    assert settle_uncertain(GREY, [after_load]).verdict is Verdict.PENDING


def test_a_load_in_ef18_record_one_is_not_evidence() -> None:
    load = CardTxn(3, 0x02, 1_000, B, T0 + timedelta(minutes=2))
    nxt = row(B, 6, 6, before=10_700, minutes=5, previous=load)
    assert settle_uncertain(GREY, [nxt]).verdict is Verdict.PENDING


def test_rows_are_told_apart_by_psam_and_seq_not_journal_id() -> None:
    same_id_other_lane = row(B, 1, 5, state=TapState.COMPLETED, amount=200)
    assert GREY.id == same_id_other_lane.id and row_key(GREY) != row_key(same_id_other_lane)
    assert settle_uncertain(GREY, [same_id_other_lane]).verdict is Verdict.NOT_DEBITED
    other_card = dataclasses.replace(same_id_other_lane, asn=bytes(10))
    assert settle_uncertain(GREY, [other_card, GREY]).verdict is Verdict.PENDING


def test_kept_proof_needs_the_key_holder() -> None:
    grey = dataclasses.replace(GREY, proof_tac=bytes(4), proof_mac2=bytes(4), algorithm_id=0)

    class Always:
        def check(self, r: object, tac: bytes) -> bool:
            return True

    assert settle_uncertain(grey, []).verdict is Verdict.PENDING
    assert settle_uncertain(grey, [], tac_checker=Always()).verdict is Verdict.DEBITED
    checker = MasterTacChecker({"3des": bytes(16)}, key_version=1)
    assert checker.check(dataclasses.replace(grey, key_version=2), bytes(4)) is None
    assert checker.check(dataclasses.replace(grey, algorithm_id=4), bytes(4)) is None  # no SM4
    assert checker.check(dataclasses.replace(grey, algorithm_id=None), bytes(4)) is None
    assert "redacted" in repr(checker) and "00000000" not in repr(checker)


def test_only_unfinished_rows_are_settled() -> None:
    with pytest.raises(ValueError):
        settle_uncertain(row(A, 2, 5), [])
