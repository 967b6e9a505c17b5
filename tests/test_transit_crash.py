"""Crash: a validator process SIGKILLed at random points loses no completed tap.

``sscard validator run --sim card.json --psam-sim psam.json`` taps
one file-backed card in a loop (card image and PSAM image saved atomically at every
commit, journal in SQLite WAL/FULL); the test kills it with SIGKILL at random moments,
restarts it, and finally lets it run a few clean taps (recovery, transit-purse.md §5.7).
Then: the card's balance and counter are exactly the initial values minus the completed
rows and the grey rows clearing settles as debited (a restart loses the PSAM session, so
a debit recovered after it is proven by the card's log only), its EF 0018 log
is the newest of those rows, nothing is left pending, and the clearing export holds
exactly those rows: completed ones with TAC and MAC2, grey ones flagged.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_transit_support import count_rows

from sscard.applets.transit import Purse
from sscard.services.grey import Verdict, settle_uncertain
from sscard.services.journal import Journal, TapState
from sscard.simulators.card import load_card
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport

KILLS = 10
CONFIG = """\
[validator]
terminal_id = "CRASH-BUS"
psam_terminal_id = "290071000099"
mode = "flat"
purchase = "{purchase}"
city_code = "2900"
line = 71
fare = 7
repeat_tap_seconds = 0

[journal]
path = "journal.db"
"""


def _validator(tmp: Path, taps: int) -> subprocess.Popen[str]:
    code = "from sscard.cli.transit import validator_group; validator_group()"
    args = ["run", "--config", str(tmp / "validator.toml"), "--psam-sim", str(tmp / "psam.json"),
            "--sim", str(tmp / "card.json"), "--taps", str(taps), "--json"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SSCARD_STATE_DIR": str(tmp)},
    )


@pytest.mark.slow
@pytest.mark.parametrize("purchase", ["composite", "simple"])
def test_sigkill_at_random_points_loses_no_completed_tap(tmp_path: Path, purchase: str) -> None:
    (tmp_path / "validator.toml").write_text(CONFIG.format(purchase=purchase))
    profile = new_card("jiangsu", seed=7, balance=50_000)
    profile.save(tmp_path / "card.json")
    assert profile.purse is not None
    balance0, counter0 = profile.purse.balance, profile.purse.offline_counter
    rnd = random.Random(6 if purchase == "composite" else 60)
    deadline = time.monotonic() + 60
    for _ in range(KILLS):
        proc = _validator(tmp_path, 100_000)
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the loop is running: at least one tap printed
        assert first.startswith("{"), first + (proc.stderr.read() if proc.stderr else "")
        time.sleep(rnd.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
        assert proc.stderr is not None
        proc.stderr.close()
        assert time.monotonic() < deadline
    # A clean run: the first tap settles whatever the last kill left unfinished.
    final = _validator(tmp_path, 3)
    out, err = final.communicate(timeout=30)
    assert final.returncode == 0, err
    assert out.count('"accepted": true') == 3

    with Journal(tmp_path / "journal.db") as journal:
        assert journal.unfinished() == []
        rows = [journal.get(i) for i in range(1, count_rows(journal) + 1)]
        done = [r for r in rows if r.state == TapState.COMPLETED]
        assert len(done) >= KILLS
        # A restart loses the PSAM session: a debit recovered after it is proven by the
        # card's log only, so its row is grey and clearing settles it.
        grey = [settle_uncertain(r, rows) for r in rows if r.state == TapState.UNCERTAIN]
        assert all(g.verdict is Verdict.DEBITED for g in grey), grey
        paid = sorted([*done, *(g.row for g in grey)], key=lambda r: r.id)
        batch = journal.export_unsent("jsonl", tmp_path / "clearing.jsonl")
        assert journal.batch(batch).row_count == len(paid)
    lines = [json.loads(x) for x in (tmp_path / "clearing.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [r.id for r in paid]
    assert all(len(x["tac"]) == 8 and len(x["mac2"]) == 8 for x in lines if not x["grey"])
    assert all(x["tac"] is None and x["proof_tac"] for x in lines if x["grey"])
    assert len({r.terminal_seq for r in rows}) == len(rows)  # PSAM seq never reused

    card = load_card(tmp_path / "card.json")
    purse = Purse(Connection(SimulatorTransport(card)).connect())
    purse.select()
    assert purse.balance() == balance0 - sum(r.amount for r in paid)
    assert purse.counters().offline == counter0 + len(paid)
    log = [t for t in purse.transactions() if t.txn_type in (6, 9)]
    assert [(t.counter, t.amount, t.time) for t in log] == [
        (r.card_counter, r.amount, r.txn_datetime) for r in paid[::-1][: len(log)]
    ]
