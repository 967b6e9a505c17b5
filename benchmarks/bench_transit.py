"""The T-Union validator: host CPU per tap, full tap via pcscd, loop rate, overhead.

* host-side CPU per composite-purchase tap, in process: ``time.process_time`` of
  ``Validator.tap`` minus the time spent inside the simulated card and PSAM (their
  crypto is not host work); includes the journal (SQLite, WAL, synchronous FULL);
* median full tap through a private pcscd (card slot 0 T=0, PSAM slot 1 T=0), when the
  host can run one (``sscard.demos.stage.open_stage``): the SDK call alone, and the CLI
  path ``sscard transit tap -r CARD --psam-reader SAM --config ...`` (config check, PSAM
  open, journal open, tap), in process and as a fresh ``python`` process per tap;
* taps per second of the validator loop against the in-process simulator (wall clock,
  journal on disk: each tap is two durable commits);
* overhead ratio: SDK tap (journal on /dev/shm, so fsync does not dominate) against
  replaying the same raw APDUs on card and PSAM with byte slicing and no SDK;
* journal durable begin+complete pairs per second (see also the ``services`` suite).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.timing import median, rate, row, samples_us
from sscard.applets.transit import Psam, Validator, ValidatorConfig
from sscard.cards.purse import TripRecord
from sscard.services.journal import Journal, PendingTap
from sscard.simulators.base import SimulatedCard
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.terminals import Connection, SimulatorTransport

H = bytes.fromhex
TID = H("310000000042")
WHEN = datetime(2025, 3, 1, 8, 15)


class _Metered:
    """A simulated card whose ``execute`` CPU time is summed (to subtract it)."""

    def __init__(self, card: SimulatedCard) -> None:
        self.card, self.cpu = card, 0.0

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
        t = time.process_time()
        try:
            return self.card.execute(apdu)
        finally:
            self.cpu += time.process_time() - t


def _config(journal: Path) -> ValidatorConfig:
    return ValidatorConfig(
        terminal_id="BENCH", mode="flat", purchase="composite", city_code="2900", line=71,
        repeat_tap_seconds=0,
        fare=1, journal_path=journal,
    )  # fmt: skip


def _rig(journal: Path) -> tuple[Validator, Connection, _Metered, _Metered]:
    keys = default_key_set()
    card = _Metered(build_card(new_card("jiangsu", seed=3, balance=100_000), keys))
    psam = _Metered(psam_card(new_psam(TID, keys=keys)))
    pconn = Connection(SimulatorTransport(psam)).connect()
    validator = Validator(_config(journal), Psam(pconn).open(), clock=lambda: WHEN)
    return validator, Connection(SimulatorTransport(card)).connect(), card, psam


def _host_cpu_ms(directory: Path, taps: int = 200) -> float:
    validator, conn, card, psam = _rig(directory / "cpu.db")
    for _ in range(20):
        validator.tap(conn)
    samples = []
    for _ in range(taps):
        c0, p0, t0 = card.cpu, psam.cpu, time.process_time()
        result = validator.tap(conn)
        total = time.process_time() - t0
        assert result.accepted, result
        samples.append((total - (card.cpu - c0) - (psam.cpu - p0)) * 1000)
    validator.close()
    return median(samples)


def _loop_rate(directory: Path) -> float:
    validator, conn, _, _ = _rig(directory / "loop.db")

    def one() -> None:
        conn.connect()
        validator.tap(conn)

    value = rate(one, seconds=1.0, batch=10)
    validator.close()
    return value


def _raw_runner() -> Callable[[], None]:
    """The validator's APDUs for a flat composite tap, by byte slicing, no SDK."""
    keys = default_key_set()
    card = build_card(new_card("jiangsu", seed=3, balance=100_000), keys)
    psam = psam_card(new_psam(TID, keys=keys))
    psam.power_on()
    card.power_on()
    psam.execute(H("00A40000021001"))
    psam.execute(H("00C0000000"))
    when, amount = H("20250301081500"), (1).to_bytes(4, "big")
    trip_tail = TripRecord(
        record_type=6, terminal_id=bytes(2) + TID, industry=2, line_station=bytes(7),
        amount=1, balance=0, time=WHEN, city_code="2900", institution_id=bytes(8),
    ).encode()  # fmt: skip

    def one() -> None:
        fci = card.execute(H("00A4040008A00000063201010500"))
        ef15 = fci[-32:-2]
        card.execute(H("00B097003C"))
        r = card.execute(H("805003020B01") + amount + TID + b"\x0f")
        trip = trip_tail[:21] + (int.from_bytes(r[0:4], "big") - 1).to_bytes(4, "big")
        card.execute(H("80DC00F030") + trip + trip_tail[25:])
        sam_in = r[11:15] + r[4:6] + amount + b"\x09" + when + r[9:11]
        psam.execute(H("8070000024") + sam_in + ef15[12:20] + ef15[0:8] + b"\x08")
        s = psam.execute(H("00C0000008"))
        d = card.execute(H("805401000F") + s[:4] + when + s[4:8] + b"\x08")
        if psam.execute(H("8072000004") + d[4:8]) != b"\x90\x00":
            raise RuntimeError("raw sequence failed")

    return one


def _sdk_runner(directory: Path) -> Callable[[], None]:
    validator, conn, _, _ = _rig(directory / "sdk.db")

    def one() -> None:
        if not validator.tap(conn).accepted:
            raise RuntimeError("tap refused")

    return one


_CLI_CONFIG = f"""\
[validator]
terminal_id = "BENCH-CLI"
psam_terminal_id = "{TID.hex().upper()}"
mode = "flat"
city_code = "2900"
line = 71
fare = 1
repeat_tap_seconds = 0

[journal]
path = "cli.db"
"""


def _pcscd_rows() -> list[dict[str, Any]]:
    """Full taps through a private pcscd: the SDK call, then the CLI path."""
    from click.testing import CliRunner

    from sscard.cli import main
    from sscard.demos.stage import open_stage

    keys = default_key_set()
    with open_stage(name="sscard bench VPCD", channel_id=0x9C60) as stage:
        if stage.via != "pcscd":
            return [row("full tap through pcscd: skipped", "ms", float("nan"), target=stage.reason)]
        assert stage._pcscd is not None
        card_reader, sam_reader = stage._pcscd.reader_names  # type: ignore[attr-defined]
        psam = stage.present(psam_card(new_psam(TID, keys=keys)), slot=1)
        card = build_card(new_card("jiangsu", seed=3, balance=100_000), keys, t0=True)
        conn = stage.present(card, slot=0)
        with tempfile.TemporaryDirectory() as tmp:
            validator = Validator(_config(Path(tmp) / "p.db"), Psam(psam).open())
            sdk = samples_us(lambda: validator.tap(conn), count=40, warmup=5)
            validator.close()
            conn.close()
            psam.close()
            config = Path(tmp) / "cli.toml"
            config.write_text(_CLI_CONFIG)
            args = ["transit", "tap", "--config", str(config), "-r", card_reader,
                    "--psam-reader", sam_reader, "--json"]  # fmt: skip
            runner = CliRunner()

            def cli_tap() -> None:
                if runner.invoke(main, args).exit_code != 0:
                    raise RuntimeError("CLI tap failed")

            cli = samples_us(cli_tap, count=20, warmup=3)
            code = "from sscard.cli import main; main()"
            fresh = samples_us(
                lambda: subprocess.run([sys.executable, "-c", code, *args], check=True,
                                       capture_output=True, timeout=60),
                count=3, warmup=1,
            )  # fmt: skip
    return [
        row("full composite tap through pcscd (card T=0 slot 0, PSAM T=0 slot 1), median",
            "ms", median(sdk) / 1000, target="<= 400 ms (DB31/T 239-2020)"),
        row("CLI tap through pcscd (transit tap -r CARD --psam-reader SAM), in process, median",
            "ms", median(cli) / 1000,
            target="informative: + config check, PSAM open, journal open per tap"),
        row("CLI tap through pcscd, a new python process per tap, median of 3", "ms",
            median(fresh) / 1000, target="informative: + interpreter start and imports"),
    ]  # fmt: skip


def _journal_pairs(directory: Path) -> float:
    with Journal(directory / "pairs.db") as journal:
        seq = iter(range(10**9))

        def pair() -> None:
            tap_id = journal.begin(
                PendingTap(terminal_id="B", psam_terminal_id=TID, terminal_seq=next(seq),
                           asn=bytes(10), issuer_id=bytes(8), txn_type=9, amount=1,
                           balance_before=10, card_counter=1, txn_datetime=WHEN)
            )  # fmt: skip
            journal.complete(tap_id, bytes(4), bytes(4), 9)

        return rate(pair, seconds=0.5, batch=5)


def run() -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        rows.append(row(
            "validator host CPU per composite tap (in-process, excl. simulated card/PSAM)",
            "ms", _host_cpu_ms(d),
            target="<= 2 ms (1% of the 400 ms of DB31/T 239-2020)",
        ))  # fmt: skip
        rows.append(row(
            "validator loop taps/s (in-process simulator, journal fsync on disk)", "taps/s",
            _loop_rate(d), target="informative",
        ))  # fmt: skip
        pairs = _journal_pairs(d)
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(
        dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    ) as tmp:
        sdk = median(samples_us(_sdk_runner(Path(tmp)), count=300, warmup=20))
    raw = median(samples_us(_raw_runner(), count=300, warmup=20))
    rows.append(row(
        "composite tap via SDK vs raw APDU replay (card + PSAM, same APDUs)", "us", sdk,
        "raw APDUs, no SDK", raw, target="informative: ratio = SDK overhead incl. journal",
    ))  # fmt: skip
    rows.extend(_pcscd_rows())
    rows.append(row(
        "journal durable begin+complete pairs/s (WAL, synchronous FULL)", "pairs/s", pairs,
        target="informative (see services suite)",
    ))  # fmt: skip
    return rows
