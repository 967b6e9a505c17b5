"""Full composite purchase sequences per second, in process: purse card + PSAM APDUs.

One sequence is what a bus validator sends (reference §P6): card SELECT,
805003, 80DC (1A), 80DC (1E), 8054; PSAM 8070 + GET RESPONSE (T=0), 8072 — 8 APDUs.
The baseline is the same number of APDUs on the trivial EchoCard in the same run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from benchmarks.timing import median, rate, row, samples_us
from sscard.cards.purse import CompositeRecord, TripRecord
from sscard.simulators.base import EchoCard
from sscard.simulators.keys import default_key_set
from sscard.simulators.psam import new_psam, psam_card
from sscard.simulators.purse_applet import purse_card, sample_profile

H = bytes.fromhex
TERMINAL = H("310000000042")
APDUS_PER_SEQUENCE = 8
WHEN = H("20250301081500")
AMOUNT = (1).to_bytes(4, "big")


def _sequence_runner(algorithm: int) -> Any:
    keys = default_key_set()
    card = purse_card(sample_profile(balance=100_000, algorithm_id=algorithm), keys)
    psam = psam_card(new_psam(TERMINAL, keys=keys))
    psam.execute(H("00A40000021001"))
    psam.execute(H("00C0000000"))  # drain the T=0 FCI; not part of the timed sequence
    select = H("00A4040008A00000063201010500")
    init = H("805003020B01") + AMOUNT + TERMINAL + b"\x0f"
    bus = CompositeRecord(record_id=2, state=1, entry_line=8, max_amount=500).encode()
    trip = TripRecord(
        record_type=3, terminal_id=H("0000") + TERMINAL, industry=2, line_station=bytes(7),
        amount=1, balance=0, time=datetime(2025, 3, 1, 8, 15), city_code="3310",
        institution_id=bytes(8),
    ).encode()  # fmt: skip
    dc_1a = H("80DC02D080") + bus
    dc_1e = H("80DC00F030") + trip
    get_response = H("00C0000008")

    def one() -> None:
        fci = card.execute(select)
        ef15 = fci[-32:-2]
        r = card.execute(init)
        card.execute(dc_1a)
        card.execute(dc_1e)
        sam_in = r[11:15] + r[4:6] + AMOUNT + b"\x09" + WHEN + r[9:11]
        psam.execute(H("8070000024") + sam_in + ef15[12:20] + ef15[0:8] + b"\x08")
        s = psam.execute(get_response)
        d = card.execute(H("805401000F") + s[:4] + WHEN + s[4:8] + b"\x08")
        ok = psam.execute(H("8072000004") + d[4:8])
        if ok != b"\x90\x00":
            raise RuntimeError("purchase sequence failed")

    return one


def _echo_runner() -> Any:
    echo = EchoCard()
    apdus = [H("00A4040008A00000063201010500")] * APDUS_PER_SEQUENCE

    def one() -> None:
        for apdu in apdus:
            echo.execute(apdu)

    return one


def run() -> list[dict[str, Any]]:
    echo = rate(_echo_runner())
    rows = []
    for algorithm, name in ((0x00, "3DES"), (0x04, "SM4")):
        seq = _sequence_runner(algorithm)
        rows.append(
            row(
                f"full composite purchase (card + PSAM, {name})",
                "sequences/s",
                rate(seq),
                f"EchoCard, {APDUS_PER_SEQUENCE} APDUs",
                echo,
                target="informative (crypto-bound; DB31/T 239 allows 400 ms per purchase)",
            )
        )
        rows.append(
            row(
                f"purchase sequence median latency ({name})",
                "us",
                median(samples_us(_sequence_runner(algorithm), count=300)),
                target="<= 400000 us (DB31/T 239-2020, whole purchase)",
            )
        )
    return rows
