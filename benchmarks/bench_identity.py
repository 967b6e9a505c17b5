"""Identity checks per second in-process: a hotel check on a simulated 3rd-gen card.

One check is the whole hotel scenario (sscard.applets.identity): SELECT SSSE, EF05,
internal authentication (IRK, reference §C3.4), GET CHALLENGE + EXTERNAL
AUTHENTICATE with RKSSSE and EF06 (§C1.5), then the policy checks (expiry, blacklist,
trust list, GB 11643 SSN consistency). The baseline replays the same raw APDUs on the
card object alone (no Connection, reader, key provider or policy), so the ratio is
what the host side costs on top of the card simulator. The card's challenges come from
a fixed RNG so the recorded external authentication stays valid when replayed. A third
row adds the SQLite audit log (one masked row per check). The QR verify rate is in
bench_identity_qr.py.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from benchmarks.timing import rate, row
from sscard.applets.identity import IdentityCheck
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.services.audit import AuditLog
from sscard.simulators.card import SocialSecurityCard, build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport


def _fixed_rng(n: int) -> bytes:
    return bytes(range(0x11, 0x11 + n))


class _Recorder:
    """A card wrapper that keeps every command APDU it executes (for the replay)."""

    def __init__(self, card: SocialSecurityCard) -> None:
        self.card = card
        self.apdus: list[bytes] = []

    @property
    def atr(self) -> bytes:
        return self.card.atr

    def power_on(self) -> bytes:
        return self.card.power_on()

    def power_off(self) -> None:
        self.card.power_off()

    def reset(self) -> bytes:
        return self.card.reset()

    def execute(self, apdu: bytes) -> bytes:
        self.apdus.append(apdu)
        return self.card.execute(apdu)


def run() -> list[dict[str, Any]]:
    profile = new_card("zhejiang", generation=3, seed=1)
    card = build_card(profile, rng=_fixed_rng)
    recorder = _Recorder(card)
    conn = Connection(SimulatorTransport(recorder))
    conn.connect()
    keys = SoftwareKeyProvider(default_key_set())
    checker = IdentityCheck()

    def check() -> None:
        result = checker.check_card("hotel", SsseReader(conn, keys, rng=_fixed_rng))
        if not result.accepted:
            raise AssertionError("benchmark card refused: " + ",".join(result.reasons))

    check()
    apdus = list(recorder.apdus)
    for apdu in apdus:  # the replay must be a valid session, not a string of errors
        if card.execute(apdu)[-2:] != b"\x90\x00":
            raise AssertionError("replayed APDU failed")

    def replay() -> None:
        for apdu in apdus:
            card.execute(apdu)

    checks_per_s = rate(check, seconds=1.0, batch=20)
    replays_per_s = rate(replay, seconds=1.0, batch=20)
    rows = [
        row(
            f"identity check, hotel, gen-3 card, internal auth ({len(apdus)} APDUs)",
            "checks/s",
            checks_per_s,
            "raw APDU replay on the card object",
            replays_per_s,
            target="informative (a front desk needs ~1/s)",
        )
    ]
    with tempfile.TemporaryDirectory() as tmp, AuditLog(Path(tmp) / "audit.sqlite3") as log:
        audited = IdentityCheck(audit=log)

        def audited_check() -> None:
            audited.check_card("hotel", SsseReader(conn, keys, rng=_fixed_rng))

        rows.append(
            row(
                "identity check, hotel, with SQLite audit row",
                "checks/s",
                rate(audited_check, seconds=1.0, batch=20),
                "without audit",
                checks_per_s,
                target="informative",
            )
        )
    conn.close()
    return rows
