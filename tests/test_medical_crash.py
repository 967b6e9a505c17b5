"""Settlements orphaned by a crash: SIGKILL the desk, then one command.

Real processes: ``sscard sim insurance serve`` (HTTP, SQLite ledger) and ``sscard
medical settle / cancel / reconcile`` started as an operator would, SIGKILLed at
random moments while they talk to the platform (some 2207/2208/3201 held in flight
by the platform's delay fault, so the kill lands with the request on the wire).
The operator then does what the desk tells them: retries a killed settlement of the
same visit (never with ``--settle-again``), settles new visits, cancels, reconciles.
Afterwards ``sscard medical recover`` alone must bring outbox and ledger into
agreement, with no service settled twice and no visit left half-done, and the day
must reconcile.

A settle process is started ahead and waits at the PIN prompt (``--ask-pin``), so
its start-up overlaps the previous run and the kill lands after the PIN is typed;
cancel and reconcile are killed a random time after their first outbox row appears.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sscard.simulators.profile import new_card

PROVINCES = ("shanghai", "jiangsu", "zhejiang", "anhui")
PIN = "123456"  # the simulator's TEST PIN
KILLS = 21
ENTRY = "from sscard.cli import main; main()"


@dataclass
class Patient:
    card: Path
    index: int
    service: int = 0  # the visit being settled
    in_progress: bool = False  # last attempt killed or not settled yet
    settled: list[str] = field(default_factory=list)  # setl_ids known to the operator


@dataclass
class Run:
    kind: str
    args: list[str]
    proc: subprocess.Popen[bytes]
    patient: Patient | None = None
    retry: bool = False


class Desk:
    """Starts ``sscard medical`` commands for one desk configuration."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.config = tmp / "medical.toml"
        self.config.write_text(
            f'[platform]\nurl = "{url}"\ntimeout = 5.0\n'
            '[institution]\nfixmedins_code = "H31010400001"\nmdtrtarea_admvs = "310000"\n'
            f'[desk]\noutbox = "{tmp / "outbox.db"}"\nacct_used_flag = "1"\n'
            f'audit_log = "{tmp / "audit.db"}"\n',
            encoding="utf-8",
        )
        self.env = {
            **os.environ,
            "SSCARD_STATE_DIR": str(tmp / "state"),
            "SSCARD_INSURANCE_URL": "",
        }

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-c", ENTRY, "medical", *args, "--config", str(self.config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=self.tmp, env=self.env,
        )  # fmt: skip

    def items(self, patient: Patient) -> Path:
        """The visit's fee file; its price makes each (patient, visit) total unique."""
        path = self.tmp / f"visit-{patient.index}-{patient.service}.csv"
        price = f"{10 + patient.index * 100 + patient.service}.00"
        path.write_text(
            "feedetl_sn,med_list_codg,medins_list_codg,medins_list_name,cnt,pric\n"
            f"1,XA01AA001,H-ZC-001,诊查费,1,{price}\n",
            encoding="utf-8",
        )
        return path


def last_msgid(outbox: Path) -> str:
    if not outbox.exists():
        return ""
    with sqlite3.connect(outbox, timeout=5) as db:
        try:
            row = db.execute("SELECT max(msgid) FROM outbox").fetchone()
        except sqlite3.OperationalError:
            return ""
    return str(row[0] or "")


def live_settlements(ledger: Path) -> set[str]:
    with sqlite3.connect(ledger, timeout=5) as db:
        rows = db.execute("SELECT setl_id FROM settlements WHERE state = 'settled'").fetchall()
    return {r[0] for r in rows}


def pending(outbox: Path, infno: str, after: str) -> bool:
    with sqlite3.connect(outbox, timeout=5) as db:
        row = db.execute(
            "SELECT 1 FROM outbox WHERE infno = ? AND state = 'pending' AND msgid > ?",
            (infno, after),
        ).fetchone()
    return row is not None


def orphans(outbox: Path) -> Counter[str]:
    """infnos of the rows a killed process left pending (before anyone recovers them)."""
    with sqlite3.connect(outbox, timeout=5) as db:
        rows = db.execute("SELECT infno FROM outbox WHERE state = 'pending'").fetchall()
    return Counter(r[0] for r in rows)


class Admin:
    """The platform's fault endpoint, with the admin token ``serve`` printed."""

    def __init__(self, url: str, token: str) -> None:
        self.base = url.split("/fsi/")[0] + "/admin/faults"
        self.headers = {"Authorization": f"Bearer {token}"}

    def delay(self, infno: str, seconds: float) -> None:
        body = json.dumps({"infno": infno, "kind": "delay", "delay": seconds, "count": 1})
        request = urllib.request.Request(self.base, body.encode(), self.headers)
        with urllib.request.urlopen(request) as resp:
            assert resp.status == 200

    def clear(self) -> None:
        request = urllib.request.Request(self.base, headers=self.headers, method="DELETE")
        with urllib.request.urlopen(request) as resp:
            assert resp.status == 200


def finish(proc: subprocess.Popen[bytes], timeout: float = 60) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, (out + err).decode("utf-8", "replace")


@pytest.mark.slow
def test_desk_sigkill_chaos_then_one_command_brings_outbox_and_ledger_into_agreement(
    tmp_path: Path,
) -> None:
    rng = random.Random(int(os.environ.get("CHAOS_SEED", "20250412")))  # another seed: explore
    patients = []
    for i, province in enumerate(PROVINCES):
        card = tmp_path / f"{province}.json"
        new_card(province, seed=40 + i).save(card)
        patients.append(Patient(card, i))
    url_file, ledger = tmp_path / "url.txt", tmp_path / "ledger.db"
    enrol = [a for p in patients for a in ("--enrol", str(p.card))]
    printed = tmp_path / "serve.out"
    with printed.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-c", ENTRY, "sim", "insurance", "serve", "--db", str(ledger),
             "--url-file", str(url_file), *enrol, "--filing-to", "310000"],
            stdout=out, stderr=subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        token = None
        while token is None and time.monotonic() < deadline:
            time.sleep(0.05)
            token = re.search(r"admin token: (\S+)", printed.read_text(encoding="utf-8"))
        assert token is not None, "sim insurance serve did not start"
        url = url_file.read_text().strip()
        admin = Admin(url, token.group(1))
        desk = Desk(tmp_path, url)
        outbox = tmp_path / "outbox.db"
        kills, hits, runs, orphaned = Counter[str](), 0, 0, Counter[str]()
        log: list[str] = []
        ahead: list[Run] = []
        started = time.monotonic()

        def settle_run() -> Run | None:
            busy = {r.patient.index for r in ahead if r.patient is not None}
            free = [p for p in patients if p.index not in busy]
            if not free:
                return None
            patient = rng.choice(free)
            retry = patient.in_progress
            if not retry:
                patient.service += 1
            args = ["settle", "--sim", str(patient.card), "--items", str(desk.items(patient)),
                    "--yes", "--ask-pin"] + ([] if retry or patient.service == 1
                                             else ["--settle-again"])  # fmt: skip
            patient.in_progress = True
            return Run("settle", args, desk.start(*args), patient, retry)

        while sum(kills.values()) < KILLS:
            assert time.monotonic() - started < 120, "chaos took too long"
            while len(ahead) < 2 and (run := settle_run()) is not None:
                ahead.append(run)
            roll = rng.random()
            settled = sorted({s for p in patients for s in p.settled} & live_settlements(ledger))
            if roll < 0.2 and settled:
                target = rng.choice(settled)
                run = Run("cancel", ["cancel", target], desk.start("cancel", target))
            elif roll < 0.35:
                run = Run("reconcile", ["reconcile"], desk.start("reconcile"))
            else:
                run = ahead.pop(0)
            kill = runs >= 1 and rng.random() < 0.9  # the first run finishes: a baseline
            before = last_msgid(outbox)
            held = {"settle": "2207", "cancel": "2208", "reconcile": "3201"}[run.kind]
            hold = kill and rng.random() < 0.4
            if hold:
                admin.delay(held, 0.4)  # the kill lands with this request on the wire
            if run.kind == "settle":
                assert run.proc.stdin is not None
                run.proc.stdin.write(PIN.encode() + b"\n")
                run.proc.stdin.flush()
            # From its first outbox row on, the process talks to the platform; with a
            # hold, wait until the held request is on the wire.
            while run.proc.poll() is None and (
                last_msgid(outbox) == before or (hold and not pending(outbox, held, before))
            ):
                time.sleep(0.003)
            released = time.monotonic()
            runs += 1
            if kill:
                time.sleep(max(0.0, released + rng.uniform(0.0, 0.3) - time.monotonic()))
                if run.proc.poll() is None:
                    run.proc.send_signal(signal.SIGKILL)
                    kills[run.kind] += 1
            code, out = finish(run.proc)
            killed = code == -signal.SIGKILL
            if killed:
                hits += last_msgid(outbox) != before  # it had talked to the platform
                orphaned.update(orphans(outbox))
            log.append(f"{run.kind} {run.args[1:2]} retry={run.retry} code={code} "
                       f"{out.strip().splitlines()[-1][:120] if out.strip() else ''}")  # fmt: skip
            if run.kind == "settle" and run.patient is not None:
                patient = run.patient
                if "结算编号 Settlement ID" in out:  # the receipt was printed: settled
                    receipt = out[out.index("结算编号 Settlement ID") :].split(":", 1)[1]
                    patient.settled.append(receipt.split()[0])
                    patient.in_progress = False
                elif killed:
                    pass  # the operator does not know: retries this visit
                elif "already has settlement" in out:
                    # The killed attempt did settle this visit: the desk says so and stops.
                    assert run.retry, out
                    patient.in_progress = False
                else:
                    assert code in (1, 5), out  # not settled (e.g. visit aborted): retried
            elif killed:
                pass
            elif run.kind == "cancel":
                assert code in (0, 2), out  # 2: already cancelled (by a killed run) / usage
                if code == 0:
                    for p in patients:
                        if run.args[1] in p.settled:
                            p.settled.remove(run.args[1])
            else:
                assert code in (0, 5), out
        for run in ahead:
            run.proc.send_signal(signal.SIGKILL)  # never released: nothing sent
            run.proc.wait()
            for pipe in (run.proc.stdin, run.proc.stdout, run.proc.stderr):
                if pipe:
                    pipe.close()
        assert sum(kills.values()) >= 20 and min(kills.values()) >= 1, kills
        assert hits >= 20, (hits, kills)
        # Kills left requests pending on the wire, settlements among them.
        assert orphaned["2207"] >= 2, orphaned
        print(f"kills {dict(kills)}, pending rows left by them {dict(orphaned)}")

        # One command: recover. Outbox and ledger agree afterwards.
        admin.clear()
        time.sleep(0.5)  # a request held by a delay fault reaches the ledger meanwhile
        code, out = finish(desk.start("recover"))
        assert code == 0, out
        try:
            check_agreement(outbox, ledger, patients)
        except AssertionError:
            print("\n".join(log))
            raise
        code, out = finish(desk.start("reconcile"))
        assert code == 0 and "balanced" in out, out
        assert time.monotonic() - started < 90
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)


def check_agreement(outbox: Path, ledger: Path, patients: list[Patient]) -> None:
    with sqlite3.connect(outbox) as db:
        rows = db.execute(
            "SELECT msgid, infno, state, manual, setl_id, cancelled_by, unseen FROM outbox"
        ).fetchall()
    with sqlite3.connect(ledger) as db:
        settlements = db.execute(
            "SELECT medins_setl_id, setl_id, psn_no, medfee_cents, state, mdtrt_id FROM settlements"
        ).fetchall()
        open_visits = db.execute(
            "SELECT v.mdtrt_id, v.reg_msgid FROM visits v WHERE v.state = 'registered'"
            " AND NOT EXISTS"
            " (SELECT 1 FROM settlements s WHERE s.mdtrt_id = v.mdtrt_id"
            "  AND s.state = 'settled')"
        ).fetchall()
    # Nothing unresolved in the outbox.
    assert [r for r in rows if r[2] in ("pending", "unknown") or r[3]] == []
    # The same settlements live on both sides, cancelled on both sides alike.
    live = {r[0] for r in rows if r[1] == "2207" and r[2] == "done" and r[5] is None}
    cancelled = {r[0] for r in rows if r[1] == "2207" and r[2] == "done" and r[5] is not None}
    theirs = {s[0] for s in settlements if s[4] == "settled"}
    mine = {r[0]: r for r in rows}
    assert live == theirs, [(m, mine.get(m), [s for s in settlements if s[0] == m])
                            for m in live ^ theirs]  # fmt: skip
    theirs = {s[0] for s in settlements if s[4] == "cancelled"}
    assert cancelled == theirs, [(m, mine.get(m)) for m in cancelled ^ theirs]
    # No service settled twice: each (patient, visit) total at most once.
    per_service = Counter((s[2], s[3]) for s in settlements if s[4] in ("settled", "cancelled"))
    assert max(per_service.values(), default=0) == 1, per_service
    # No visit left registered without its settlement.
    assert open_visits == [], [(v, mine.get(v[1])) for v in open_visits]
    assert any(s[4] == "settled" for s in settlements)
