"""``sscard transit balance|history|tap|load`` and ``sscard validator run``.

The card comes from the common options (``--sim card.json`` or ``-r READER``); the
PSAM from ``--psam-reader R`` (PC/SC) or ``--psam-sim psam.json`` (the simulated
PSAM: make one per validator with ``sscard sim psam new --terminal-id``; a missing
file is created with TEST keys and the configuration's ``psam_terminal_id``, and it
keeps the sequence number). The configuration is read and checked first: a bad one
stops the command (exit 2) before any PSAM, card or journal is touched. Times are
Beijing time with their offset (reference §P5.8).
``transit load`` talks to the *simulated* load host with the TEST key set: a real
load host is the issuer's network service (reference §P2, §P4).

TEST keys with a card in a real reader (``--psam-sim`` or ``transit load`` without
``--sim``) need ``--test-keys`` and print a warning on every run: a real
card must never meet the published TEST keys by accident.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

import click

from sscard import clock as beijing
from sscard.apdu.errors import CardError
from sscard.applets.transit.config import ValidatorConfig
from sscard.applets.transit.errors import PsamError
from sscard.applets.transit.load import load as load_purse
from sscard.applets.transit.purse import Counters, Purse
from sscard.applets.transit.results import TapResult
from sscard.applets.transit.validator import Validator
from sscard.cards.cities import city as tunion_city
from sscard.cards.privacy import mask_asn
from sscard.cli.common import CliOptions, common_options, emit, handle_errors, options
from sscard.cli.connect import open_connection
from sscard.errors import ConfigError, ExitStatus
from sscard.terminals.connection import Connection
from sscard.terminals.errors import TerminalError

_CONFIG = click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Validator TOML (see examples/validator-metro.toml).",
)
_PSAM_READER = click.option("--psam-reader", default=None, help="PC/SC reader holding the PSAM.")
_PSAM_SIM = click.option(
    "--psam-sim",
    type=click.Path(dir_okay=False),
    default=None,
    help="Simulated PSAM image (JSON; created with TEST keys if missing).",
)


_TEST_KEYS = click.option(
    "--test-keys",
    is_flag=True,
    help="Allow the TEST key set (simulated PSAM / load host) with a card in a real reader.",
)


def _check_test_keys(test_keys: bool, what_en: str, what_zh: str) -> None:
    """TEST keys with a real reader: refused without ``--test-keys``, warned about with it."""
    if options().sim:
        return  # the simulated card is personalised with the TEST keys
    if not test_keys:
        raise ConfigError(
            f"{what_en} uses the TEST key set, but the card is in a real reader;"
            " add --test-keys if that is meant",
            f"{what_zh}使用测试密钥，而卡片在真实读卡器上；如确需如此请加 --test-keys",
        )
    click.echo(
        f"warning: {what_en} with TEST keys on a real reader (--test-keys) /"
        f" 警告：{what_zh}在真实读卡器上使用测试密钥",
        err=True,
    )


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def _mask(asn: str | None, redact: bool) -> str | None:
    return asn if asn is None or not redact else mask_asn(asn)


def _open_psam(
    psam_reader: str | None,
    psam_sim: str | None,
    test_keys: bool,
    terminal_id: bytes | None = None,
) -> Connection:
    """The validator's PSAM; a missing ``psam_sim`` file is made for ``terminal_id``."""
    if psam_sim:
        _check_test_keys(test_keys, "--psam-sim (a simulated PSAM)", "--psam-sim（模拟PSAM）")
        from sscard.simulators.keys import default_key_set
        from sscard.simulators.psam import PsamImage, new_psam, psam_card
        from sscard.terminals.simulator import SimulatorTransport

        path = Path(psam_sim)
        if path.exists():
            image = PsamImage.load(path)
        elif terminal_id is None:
            raise PsamError(
                f"{path.name} does not exist: make it with sscard sim psam new --terminal-id",
                f"{path.name}不存在：请用 sscard sim psam new --terminal-id 创建",
            )
        else:
            image = new_psam(terminal_id, keys=default_key_set())
            image.save(path)
        conn = Connection(SimulatorTransport(psam_card(image, path=path), name=f"sim:{path}"))
        conn.connect()
        return conn
    if psam_reader:
        from sscard.terminals.pcsc import PcscTransport

        conn = Connection(PcscTransport(psam_reader))
        conn.connect()
        return conn
    raise PsamError("give --psam-reader or --psam-sim", "请指定 --psam-reader 或 --psam-sim")


def result_dict(result: TapResult, redact: bool = True) -> dict[str, Any]:
    """A tap result as JSON-ready data (card number masked unless ``redact`` is False)."""
    if not result.accepted:
        return {
            "accepted": False,
            "code": result.code,
            "message_en": result.text_en,
            "message_zh": result.text_zh,
            "asn": _mask(result.asn, redact),
        }
    return {
        "accepted": True,
        "kind": result.kind.value,
        "fare_fen": result.fare,
        "base_fare_fen": result.base_fare,
        "discount_fen": result.discount,
        "balance_fen": result.balance,
        "station": result.station,
        "entry_station": result.entry_station,
        "penalty": result.penalty,
        "transfer": result.transfer,
        "recovered": result.recovered,
        "mac2_verified": result.mac2_verified,
        "tap_id": result.tap_id,
        "asn": _mask(result.asn, redact),
    }


def result_line(result: TapResult) -> str:
    if not result.accepted:
        return f"REFUSED {result.code}: {result.text_en} / {result.text_zh}"
    notes = [n for n, on in (("recovered", result.recovered), ("penalty", result.penalty),
                             ("transfer", result.transfer)) if on]  # fmt: skip
    extra = f" [{', '.join(notes)}]" if notes else ""
    return f"ACCEPTED {result.text_en}{extra} / {result.text_zh}"


def _emit_result(result: TapResult, opts: CliOptions) -> None:
    emit(result_dict(result, opts.redact), result_line(result))


# =========================================================================== transit


@click.group(name="transit")
def transit_group() -> None:
    """T-Union transit purse: balance, history, a validator tap, a load."""


@transit_group.command()
@common_options
@handle_errors
def balance() -> None:
    """Balance, overdraft and counters of the purse."""
    opts = options()
    with open_connection(opts) as conn:
        purse = Purse(conn)
        ef15 = purse.select()
        b = purse.balances()
        try:
            counters: Counters | None = purse.counters()
        except CardError:  # a key index other than 01: the counters stay unknown
            counters = None
    offline = counters.offline if counters else None
    online = counters.online if counters else None
    city = _city(ef15.city_code)
    where = f"{city['name_zh']} {city['name_en']}".strip() or city["code"]
    emit(
        {
            "asn": _mask(ef15.asn, opts.redact),
            "balance_fen": b.signed,
            "overdrawn_fen": b.overdrawn,
            "overdraft_limit_fen": counters.overdraft_limit if counters else None,
            "usable_fen": b.usable,
            "offline_counter": offline,
            "online_counter": online,
            "expiry": ef15.expiry_date.isoformat(),
            "city": city,
        },
        f"balance / 余额: {_yuan(b.signed)} CNY  (card {_mask(ef15.asn, opts.redact)},"
        f" issued in / 发卡地 {where}, purchases {offline}, loads {online},"
        f" expires {ef15.expiry_date})",
    )


def _city(code: str) -> dict[str, str]:
    """A T-Union city code with its names (GB/T 13497, reference §P5.8)."""
    found = tunion_city(code)
    return {
        "code": code,
        "name_zh": found.name_zh if found else "",
        "name_en": found.name_en if found else "",
    }


@transit_group.command()
@common_options
@handle_errors
def history() -> None:
    """Transaction log (EF 0018) and trip records (EF 001E), newest first."""
    opts = options()
    with open_connection(opts) as conn:
        purse = Purse(conn)
        purse.select()
        b = purse.balances()
        txns, trips = purse.transactions(), purse.trips()
    data = {
        "balance_fen": b.signed,
        "transactions": [
            {"counter": t.counter, "amount_fen": t.amount, "type": f"{t.txn_type:02X}",
             "terminal": t.terminal_id.hex().upper(), "time": beijing.isoformat(t.time)}
            for t in txns
        ],
        "trips": [
            {"type": f"{t.record_type:02X}", "industry": f"{t.industry:02X}",
             "amount_fen": t.amount, "balance_fen": t.balance,
             "time": beijing.isoformat(t.time), "terminal": t.terminal_id.hex().upper(),
             "city": t.city_code, "city_name": _city(t.city_code)["name_zh"]}
            for t in trips
        ],
    }  # fmt: skip
    lines = [f"balance / 余额: {_yuan(b.signed)} CNY", "transactions / 交易明细 (UTC+8):"]
    lines += [f"  {t.time:%Y-%m-%d %H:%M:%S}  type {t.txn_type:02X}  {_yuan(t.amount):>8}"
              f"  terminal {t.terminal_id.hex().upper()}  #{t.counter}"
              for t in txns]  # fmt: skip
    lines.append("trips / 行程记录 (UTC+8):")
    lines += [f"  {t.time:%Y-%m-%d %H:%M:%S}  type {t.record_type:02X}  industry"
              f" {t.industry:02X}  {_yuan(t.amount):>8}  balance {_yuan(t.balance)}"
              f"  terminal {t.terminal_id.hex().upper()}"
              f"  {_city(t.city_code)['name_zh'] or t.city_code}"
              for t in trips]  # fmt: skip
    emit(data, "\n".join(lines))


@transit_group.command()
@_CONFIG
@_PSAM_READER
@_PSAM_SIM
@_TEST_KEYS
@common_options
@handle_errors
def tap(config: str, psam_reader: str | None, psam_sim: str | None, test_keys: bool) -> None:
    """One validator tap with the card (exit status 1 when refused)."""
    opts = options()
    cfg = ValidatorConfig.load(config)  # first: a bad file touches nothing
    psam = _open_psam(psam_reader, psam_sim, test_keys, cfg.psam_terminal_id)
    try:
        with Validator(cfg, psam) as validator, open_connection(opts) as conn:
            result = validator.tap(conn)
    finally:
        psam.close()
    _emit_result(result, opts)
    if not result.accepted:
        raise SystemExit(ExitStatus.REFUSED)


@transit_group.command(name="load")
@click.argument("amount")
@click.option(
    "--terminal-id", default="310000000001", show_default=True, help="6-B load terminal ID, hex."
)
@_TEST_KEYS
@common_options
@handle_errors
def load_command(amount: str, terminal_id: str, test_keys: bool) -> None:
    """Load AMOUNT CNY (e.g. 50 or 20.50) through the simulated load host (TEST keys)."""
    from sscard.simulators.keys import default_key_set
    from sscard.simulators.load_host import LoadHost

    try:
        fen = Decimal(amount) * 100
    except InvalidOperation:
        raise click.BadParameter("an amount in CNY, e.g. 50 or 20.50") from None
    if fen != fen.to_integral_value() or fen <= 0:
        raise click.BadParameter("a positive amount with at most 2 decimals")
    try:
        tid = bytes.fromhex(terminal_id)
    except ValueError:
        raise click.BadParameter("6 bytes of hex") from None
    _check_test_keys(test_keys, "transit load (the simulated load host)", "圈存（模拟圈存主机）")
    opts = options()
    with open_connection(opts) as conn:
        result = load_purse(conn, int(fen), LoadHost(default_key_set()), terminal_id=tid)
    emit(
        {
            "amount_fen": result.amount,
            "balance_before_fen": result.balance_before,
            "balance_fen": result.balance,
            "tac_verified": result.tac_verified,
            "asn": _mask(result.asn, opts.redact),
        },
        f"loaded / 圈存 {_yuan(result.amount)} CNY: balance / 余额 {_yuan(result.balance)}"
        + ("" if result.tac_verified else "  (TAC not verified / TAC未通过校验)"),
    )


# =========================================================================== validator


@contextmanager
def _stop_on_signals() -> Iterator[list[bool]]:
    """SIGINT/SIGTERM set a flag; the loop finishes the current tap, then stops."""
    flag = [False]

    def handler(_signum: int, _frame: FrameType | None) -> None:
        flag[0] = True

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@click.group(name="validator")
def validator_group() -> None:
    """Run a T-Union validator."""


@validator_group.command()
@_CONFIG
@_PSAM_READER
@_PSAM_SIM
@click.option("--taps", type=int, default=1, show_default=True, help="--sim: number of taps.")
@click.option("--interval", type=float, default=0.0, help="--sim: seconds between taps.")
@_TEST_KEYS
@common_options
@handle_errors
def run(
    config: str,
    psam_reader: str | None,
    psam_sim: str | None,
    taps: int,
    interval: float,
    test_keys: bool,
) -> None:
    """Wait for cards, tap, print; Ctrl-C / SIGTERM stop after the current tap."""
    opts = options()
    cfg = ValidatorConfig.load(config)  # first: a bad file touches nothing
    psam = _open_psam(psam_reader, psam_sim, test_keys, cfg.psam_terminal_id)
    try:
        with Validator(cfg, psam) as validator, _stop_on_signals() as stop:
            if opts.sim:
                _run_sim(validator, opts, taps, interval, stop)
            else:
                _run_pcsc(validator, opts, psam_reader, stop)
    finally:
        psam.close()


def _run_sim(
    validator: Validator, opts: CliOptions, taps: int, interval: float, stop: list[bool]
) -> None:
    conn = open_connection(opts)
    try:
        for n in range(taps):
            if stop[0]:
                break
            if n:
                time.sleep(interval)
                conn.connect()  # the same card presented again
            _emit_result(validator.tap(conn), opts)
    finally:
        conn.close()


def _run_pcsc(
    validator: Validator, opts: CliOptions, psam_reader: str | None, stop: list[bool]
) -> None:
    from sscard.terminals.monitor import CardMonitor
    from sscard.terminals.pcsc import PcscTransport

    with CardMonitor(readers=[opts.reader] if opts.reader else None) as monitor:
        while not stop[0]:
            event = monitor.get(0.5)
            if event is not None and event.kind in ("error", "recovered"):
                # e.g. pcscd not running: say so, keep waiting (the monitor re-establishes)
                click.echo(f"{event.kind}: {event.message}", err=True)
            if event is None or event.kind != "inserted" or event.reader is None:
                continue
            if psam_reader and psam_reader in event.reader:
                continue
            conn = Connection(PcscTransport(event.reader))
            try:
                conn.connect()
            except TerminalError as exc:  # pulled away before we could talk to it
                click.echo(f"{event.reader}: {exc.bilingual()}", err=True)
                continue
            try:
                _emit_result(validator.tap(conn), opts)
            finally:
                conn.close()


#: What ``sscard.cli`` registers (two top-level groups).
command = transit_group
