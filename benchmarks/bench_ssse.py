"""Host-side cost of a full front-desk read of a 3rd-generation card, and its APDU count.

One ``SsseReader.read()``: SELECT, EF05 (7 records), GET CHALLENGE + EXTERNAL
AUTHENTICATE (RKSSSE), EF06 (7 records), INTERNAL AUTHENTICATE (IRK), keys from the
software key provider. Baseline, in the same run: the *same raw APDU bytes* replayed
directly (``card.execute`` in-process; ``PcscTransport.transmit`` over pcscd), so the
ratio is what the SDK adds (decoding, crypto, checks) on top of the card's own time.
The card's and the reader's random generators are fixed so the replayed cryptograms
stay valid.
"""

from __future__ import annotations

from typing import Any

from benchmarks.timing import median, row, samples_us
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.simulators.card import SocialSecurityCard, build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.terminals import Connection, SimulatorTransport


def _fixed(n: int) -> bytes:
    return bytes([0x5A]) * n


def _card() -> SocialSecurityCard:
    return build_card(new_card("zhejiang", generation=3, seed=2024), rng=_fixed)


class _Recording(SimulatorTransport):
    """Remembers every raw command (the replay baseline and the APDU count)."""

    def __init__(self, card: SocialSecurityCard) -> None:
        super().__init__(card)
        self.sent: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return super().transmit(apdu)


_KEYS = SoftwareKeyProvider(default_key_set())  # loaded once per process, as at a desk


def _reader(conn: Connection) -> SsseReader:
    return SsseReader(conn, _KEYS, rng=_fixed)


def _sim_rows() -> tuple[list[dict[str, Any]], list[bytes]]:
    card = _card()
    recording = _Recording(card)
    first = _reader(Connection(recording).connect()).read()
    if first.genuine is not True:
        raise RuntimeError("benchmark card did not read")
    apdus = list(recording.sent)
    conn = Connection(SimulatorTransport(card)).connect()
    ours = samples_us(lambda: _reader(conn).read(), 300, warmup=20)

    def replay() -> None:
        for apdu in apdus:
            card.execute(apdu)

    direct = samples_us(replay, 300, warmup=20)
    rows = [
        row(
            "SSSE full read, gen 3 (in-process)",
            "µs/read (median)",
            median(ours),
            "same raw APDUs on card.execute",
            median(direct),
        ),
        row("SSSE full read, gen 3: APDUs per read", "APDUs", float(len(apdus))),
    ]
    return rows, apdus


def _pcsc_rows(apdus: list[bytes]) -> list[dict[str, Any]]:
    from sscard.demos.stage import open_stage

    name = "SSSE full read, gen 3 (pcscd + vpcd)"
    with open_stage(name="sscard bench VPCD") as stage:
        if stage.via != "pcscd":
            return [row(name, f"skipped: {stage.reason}", 0.0)]
        conn = stage.present(_card())
        ours = samples_us(lambda: _reader(conn).read(), 20, warmup=3)

        def replay() -> None:
            for apdu in apdus:
                conn.transport.transmit(apdu)

        raw = samples_us(replay, 20, warmup=3)
        conn.close()
        stage.remove(0)
    return [
        row(name, "µs/read (median)", median(ours), "same raw APDUs via PcscTransport.transmit",
            median(raw)),
    ]  # fmt: skip


def run() -> list[dict[str, Any]]:
    rows, apdus = _sim_rows()
    return rows + _pcsc_rows(apdus)


if __name__ == "__main__":
    for r in run():
        print(r)
