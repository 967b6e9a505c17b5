"""Shared rig for the transit tests (no tests here): a PSAM, cards, validators, a journal.

Everything is real: the simulated card OS and PSAM over ``SimulatorTransport``, a real
SQLite journal in ``tmp_path``; the clock is injected so trips have controlled times.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sscard.apdu import Command
from sscard.applets.transit import FareTable, Psam, Validator, ValidatorConfig
from sscard.applets.transit.purse import Purse
from sscard.cards.ids import Industry
from sscard.services.journal import Journal, TapState
from sscard.simulators.base import CardWrapper, SimulatedCard
from sscard.simulators.card import build_card
from sscard.simulators.keys import KeySet, default_key_set
from sscard.simulators.profile import CardProfile, new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection, SimulatorTransport

TID = bytes.fromhex("310000000042")
TODAY = date(2025, 3, 1)
METRO_FARES = """\
from\\to,2-5,2-10,16-17
2-5,300,400,600
2-10,400,300,500
16-17,600,500,300
"""
SHANGHAI = "2900"  # T-Union city code (GB/T 13497, reference §P5.8)


def metro(gate: str, line: int, station: int, **kw: Any) -> dict[str, Any]:
    return {"terminal_id": f"M{line}-{station}-{gate}", "mode": "metro", "gate": gate,
            "city_code": SHANGHAI, "line": line, "station": station,
            "industry": int(Industry.METRO), "gate_id": f"G{line:02d}{station:02d}",
            "operator": b"\x00\x02", **kw}  # fmt: skip


def bus(**kw: Any) -> dict[str, Any]:
    return {"terminal_id": "BUS71", "mode": "flat", "city_code": SHANGHAI, "line": 71,
            "industry": int(Industry.BUS), "fare": 200, "operator": b"\x00\x01",
            **kw}  # fmt: skip


class Rig:
    """One PSAM, one journal, a settable clock; cards and validators on demand."""

    def __init__(self, tmp_path: Path, keys: KeySet | None = None, tid: bytes = TID) -> None:
        self.keys = keys or default_key_set()
        self.tmp = tmp_path
        self.psam_card = psam_card(new_psam(tid, keys=self.keys))
        self.psam_conn = Connection(SimulatorTransport(self.psam_card)).connect()
        self.psam = Psam(self.psam_conn).open()
        self.journal = Journal(tmp_path / "journal.db")
        self.now = datetime(2025, 3, 1, 8, 0)
        self.table = FareTable.parse(METRO_FARES)

    def clock(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)

    def profile(self, province: str = "jiangsu", seed: int = 1, **kw: Any) -> CardProfile:
        kw.setdefault("balance", 10_000)
        return new_card(province, seed=seed, today=TODAY, **kw)

    def card(
        self, profile: CardProfile | None = None, keys: KeySet | None = None
    ) -> tuple[Any, Connection]:
        c = build_card(profile or self.profile(), keys or self.keys)
        return c, self.connect(c)

    @staticmethod
    def connect(card: SimulatedCard) -> Connection:
        return Connection(SimulatorTransport(card)).connect()

    def validator(self, config: dict[str, Any], **kw: Any) -> Validator:
        if config.get("mode") in ("metro", "bus-segment"):
            config = {"fare_table": self.table, **config}
        cfg = ValidatorConfig(journal_path=self.tmp / "unused.db", **config)
        kw.setdefault("clock", self.clock)
        return Validator(cfg, self.psam, journal=self.journal, **kw)

    def rows(self, state: TapState | None = None) -> list[Any]:
        """Every journal row, oldest first (ids are 1..n: rows are never deleted)."""
        rows = [self.journal.get(i) for i in range(1, count_rows(self.journal) + 1)]
        return [r for r in rows if state is None or r.state == state]


def count_rows(journal: Journal) -> int:
    return sum(journal.stats().by_state.values())


def with_category(profile: CardProfile, category: int) -> CardProfile:
    assert profile.purse is not None
    ef17 = dataclasses.replace(profile.purse.ef0017, category=category)
    profile.purse = dataclasses.replace(profile.purse, ef0017=ef17)
    return profile


def purse_state(conn: Connection) -> tuple[int, list[Any], list[Any]]:
    """Balance, EF 0018 and EF 001E as the card reports them."""
    p = Purse(conn)
    p.select()
    return p.balance(), p.transactions(), p.trips()


class Tampered(CardWrapper):
    """A card whose 8054/805A answers carry a wrong MAC2 (a tampered card)."""

    def execute(self, apdu: bytes) -> bytes:
        answer = self.card.execute(apdu)
        if apdu[:2] == b"\x80\x54" and len(answer) == 10:  # TAC ‖ MAC2 ‖ SW
            return answer[:4] + bytes(4) + answer[8:]
        if apdu[:2] == b"\x80\x5a" and len(answer) == 10:  # MAC2 ‖ TAC ‖ SW
            return bytes(4) + answer[4:]
        return answer


class Lane:
    """One validator as deployed: its own PSAM (own terminal number) and own journal.

    Several lanes share the rig's clock and key set; cards move between them. ``restart``
    is a new validator process (new PSAM session object, journal reopened);
    ``lose_psam_context`` resets the PSAM under a validator that still believes it holds
    its last 8070 session (8072 then answers 6901).
    """

    def __init__(self, rig: Rig, name: str, tid: bytes, config: dict[str, Any], **kw: Any) -> None:
        self.rig, self.name, self.tid, self.kw = rig, name, tid, kw
        if config.get("mode") in ("metro", "bus-segment"):
            config = {"fare_table": rig.table, **config}
        self.config = {**config, "terminal_id": name}
        self.psam_card = psam_card(new_psam(tid, keys=rig.keys))
        self.psam_conn = Connection(SimulatorTransport(self.psam_card)).connect()
        self.journal_path = rig.tmp / f"journal-{name}.db"
        self.journal: Journal | None = None
        self.start()

    def start(self) -> None:
        self.psam = Psam(self.psam_conn).open()
        self.journal = Journal(self.journal_path)
        cfg = ValidatorConfig(journal_path=self.journal_path, **self.config)
        self.validator = Validator(
            cfg, self.psam, journal=self.journal, clock=self.rig.clock, **self.kw
        )

    def restart(self) -> None:
        assert self.journal is not None
        self.journal.close()
        self.start()

    def lose_psam_context(self) -> None:
        self.psam_conn.reconnect(reset=True)
        self.psam_conn.send(Command(0x00, 0xA4, 0x00, 0x00, b"\x10\x01"))  # back in DF 1001

    def tap(self, conn: Connection) -> Any:
        conn.connect()
        return self.validator.tap(conn)

    def rows(self) -> list[Any]:
        assert self.journal is not None
        return self.journal.rows()

    def close(self) -> None:
        if self.journal is not None:
            self.journal.close()


def accepted(result: object) -> Any:
    from sscard.applets.transit import TapAccepted

    assert isinstance(result, TapAccepted), result
    return result


def refused(result: object, reason: Any) -> Any:
    from sscard.applets.transit import TapRefused

    assert isinstance(result, TapRefused), result
    assert result.reason is reason, result
    return result
