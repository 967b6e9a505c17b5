"""Per-APDU cost of sscard's terminal layer against raw pyscard, in the same run.

Over pcscd: a private pcscd + vpcd bridge with the echo card (the harness code
in sscard.simulators.pcscd), ``Connection.transmit(Command)`` versus pyscard's
``CardConnection.transmit`` of the same APDUs (the issue's baseline; target:
sscard adds at most 10 %) and versus the low-level ``scard.SCardTransmit``
(the floor), each on its own handle to the same card, measured in alternating
blocks so drift hits all equally. In-process: ``Connection`` over ``SimulatorTransport``
versus calling ``card.execute`` directly.
"""

from __future__ import annotations

from typing import Any

from benchmarks.timing import median, row, samples_us
from sscard.apdu import Command
from sscard.simulators.base import EchoCard
from sscard.simulators.pcscd import PrivatePcscd, why_not_private
from sscard.simulators.vpcd import VpcdBridge
from sscard.terminals import Connection, SimulatorTransport
from sscard.terminals.pcsc import PcscTransport, wait_for_card

COMMANDS = [
    Command(0x00, 0xEE, 0x00, 0x00, bytes(range(16)), le=256),
    Command(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A000000632010105"), le=256),
    Command(0x00, 0xB2, 0x01, 0x04, bytes(4)),
]
ROUNDS, PER_ROUND = 6, 200


def _cycle(fn_for: Any) -> Any:
    state = {"i": 0}

    def step() -> None:
        fn_for(COMMANDS[state["i"] % len(COMMANDS)])
        state["i"] += 1

    return step


def _pcsc_rows() -> list[dict[str, Any]]:
    reason = why_not_private()
    if reason:
        return [row(f"Connection over pcscd: skipped ({reason})", "us", float("nan"))]
    from smartcard import scard
    from smartcard.System import readers

    with PrivatePcscd(friendly_name="sscard bench VPCD", channel_id=0x9C50) as daemon:
        reader = daemon.reader_names[0]
        with VpcdBridge(EchoCard(), port=daemon.ports[0]):
            if not wait_for_card(reader, timeout=5):
                raise RuntimeError("pcscd did not see the benchmark card")
            conn = Connection(PcscTransport(reader)).connect()
            rc, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            rc, hcard, proto = scard.SCardConnect(
                ctx,
                reader,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            if rc:
                raise RuntimeError(f"SCardConnect failed: {rc:#x}")
            pyscard_conn = next(r for r in readers() if str(r) == reader).createConnection()
            pyscard_conn.connect()
            raw_apdus = {id(c): list(bytes(c)) for c in COMMANDS}
            runs = {
                "ours": _cycle(conn.transmit),
                "transmit": _cycle(lambda c: pyscard_conn.transmit(raw_apdus[id(c)])),
                "scard": _cycle(lambda c: scard.SCardTransmit(hcard, proto, raw_apdus[id(c)])),
            }
            samples: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(ROUNDS):
                for name, fn in runs.items():
                    samples[name] += samples_us(fn, PER_ROUND, warmup=20)
            pyscard_conn.disconnect()
            pyscard_conn.release()
            scard.SCardDisconnect(hcard, scard.SCARD_LEAVE_CARD)
            scard.SCardReleaseContext(ctx)
            conn.close()
    ours = median(samples["ours"])
    return [
        row(
            "APDU via Connection over pcscd+vpcd",
            "µs/APDU (median)",
            ours,
            "pyscard CardConnection.transmit (list[int])",
            median(samples["transmit"]),
            target="ratio <= 1.10",
        ),
        row(
            "APDU via Connection over pcscd+vpcd",
            "µs/APDU (median)",
            ours,
            "pyscard low-level scard.SCardTransmit",
            median(samples["scard"]),
        ),
    ]


def _sim_rows() -> list[dict[str, Any]]:
    card = EchoCard()
    conn = Connection(SimulatorTransport(card)).connect()
    ours = samples_us(_cycle(conn.transmit), 3000)
    encoded = {id(c): bytes(c) for c in COMMANDS}
    direct = samples_us(_cycle(lambda c: card.execute(encoded[id(c)])), 3000)
    return [
        row(
            "APDU via Connection over in-process simulator",
            "µs/APDU (median)",
            median(ours),
            "card.execute(bytes) directly",
            median(direct),
        )
    ]


def run() -> list[dict[str, Any]]:
    return _sim_rows() + _pcsc_rows()


if __name__ == "__main__":
    for r in run():
        print(r)
