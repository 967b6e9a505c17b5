"""A validator process killed with SIGKILL loses nothing.

A child process runs a tap loop on a real journal file (begin; then complete,
mark torn or fail; now and then a clearing export and an ack) and prints each
id only after the call that committed it returned. The parent kills it with
SIGKILL at a random moment, 25 times, and checks after each kill: every printed
``completed`` id is completed in the database with its TAC; every begun tap
exists with its full context; the database passes ``integrity_check`` and has no
half-written row; no clearing file (the children's or a fresh export) contains
a row that is not completed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sscard.services.journal import Journal

CHILD = r"""
import os, sys
from datetime import datetime
from sscard.services.journal import Journal, PendingTap

db, outdir, start = sys.argv[1], sys.argv[2], int(sys.argv[3])
journal = Journal(db)
print("ready", flush=True)
i = start
while True:
    tap = PendingTap(
        terminal_id="T1", psam_terminal_id=bytes.fromhex("300089000340"), terminal_seq=i,
        asn=(i % 97).to_bytes(10, "big"), issuer_id=bytes.fromhex("01011000FFFFFFFF"),
        txn_type=9, amount=i % 1000, balance_before=100000, card_counter=i % 65536,
        txn_datetime=datetime(2025, 3, 1, 9, 0, 0), fare={"seq": i},
    )
    tap_id = journal.begin(tap)
    print(f"B {tap_id} {i}", flush=True)
    if i % 10 == 3:
        journal.mark_unknown(tap_id)  # torn: left for recovery
    elif i % 10 == 7:
        journal.fail(tap_id, "SW 9401")
    elif i % 10 != 5:  # i % 10 == 5: stays pending, as if killed before 8054 answered
        journal.complete(tap_id, i.to_bytes(4, "big"), b"MAC2", 100000 - i % 1000)
        print(f"C {tap_id} {i}", flush=True)
    if i % 15 == 0:
        batch = journal.export_unsent("jsonl", os.path.join(outdir, f"clearing-{i}.jsonl"))
        print(f"E {batch}", flush=True)
        if i % 30 == 0:
            journal.ack(batch)
            print(f"A {batch}", flush=True)
    i += 1
"""

KILLS = 25


def run_child(script: Path, db: Path, outdir: Path, start: int, delay: float) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), str(outdir), str(start)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline() == "ready\n"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.stdout.read()
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    # Only whole lines count: a line is printed after the commit it reports.
    return [line for line in out.split("\n")[:-1]]


def check_database(db: Path, begun: dict[int, int], done: dict[int, int], acked: set[str]):
    raw = sqlite3.connect(db)
    raw.row_factory = sqlite3.Row
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = {r["id"]: r for r in raw.execute("SELECT * FROM taps")}
        for tap_id, seq in begun.items():
            row = rows[tap_id]  # begin() was durable
            assert (row["terminal_seq"], row["amount"]) == (seq, seq % 1000)
            assert json.loads(row["fare_json"]) == {"seq": seq}
        for tap_id, seq in done.items():
            row = rows[tap_id]
            assert row["state"] == "completed"
            assert row["tac"] == seq.to_bytes(4, "big").hex().upper()
        for row in rows.values():  # no half-written row
            proof = (row["tac"], row["mac2"], row["balance_after"])
            if row["state"] == "completed":
                assert None not in proof and len(row["asn"]) == 20
            else:
                assert proof == (None, None, None) and row["sent_batch"] is None
        for batch in acked:
            assert raw.execute(
                "SELECT acked_at FROM batches WHERE batch_id = ?", (batch,)
            ).fetchone()[0]
        return {tap_id: row["state"] for tap_id, row in rows.items()}
    finally:
        raw.close()


@pytest.mark.slow
def test_sigkill_during_tap_loop_loses_nothing(tmp_path: Path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    db, outdir = tmp_path / "journal.db", tmp_path / "out"
    outdir.mkdir()
    rnd = random.Random()
    begun: dict[int, int] = {}
    done: dict[int, int] = {}
    acked: set[str] = set()
    deadline = time.monotonic() + 20
    for k in range(KILLS):
        assert time.monotonic() < deadline, f"only {k} kills in 20 s"
        for line in run_child(script, db, outdir, k * 100_000, rnd.uniform(0.0, 0.12)):
            kind, *rest = line.split()
            if kind == "B":
                begun[int(rest[0])] = int(rest[1])
            elif kind == "C":
                done[int(rest[0])] = int(rest[1])
            elif kind == "A":
                acked.add(rest[0])
        states = check_database(db, begun, done, acked)

    assert len(done) > KILLS  # the children really were looping when killed
    # No clearing file, from a child or exported now, holds a row that is not completed.
    with Journal(db) as journal:
        journal.export_unsent("jsonl", outdir / "final.jsonl")
    exported = 0
    for path in outdir.glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert states[json.loads(line)["id"]] == "completed"
            exported += 1
    assert exported > 0
    assert "pending" in states.values() or "unknown" in states.values()
