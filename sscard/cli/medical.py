"""``sscard medical``: settle, cancel and reconcile at the medical front desk.

``settle --items visit.csv`` reads the card, runs 1101 → 2201 → 2203/2204 →
2206, shows the split, asks (unless ``--yes``), settles (2207) and prints the
receipt (``--json``: the receipt as JSON). ``cancel SETL_ID`` runs 2208 → 2205
→ 2202; ``cancel --visit MDTRT_ID`` cancels a registered, unsettled visit.
``reconcile --date`` compares the day's outbox with the platform's 3201 totals
(exit status 5 when they differ). See shared/reference/medical-insurance.md §1.

The desk configuration comes from ``--config FILE`` (env ``SSCARD_MEDICAL_CONFIG``,
e.g. examples/medical.toml); env ``SSCARD_INSURANCE_URL`` overrides its platform URL.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import click

from sscard.applets.keyprovider import KeyProvider
from sscard.applets.medical import (
    CardIdentity,
    DeskConfig,
    PreSettlement,
    VisitPlan,
    read_identity,
)
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.cli.connect import open_connection
from sscard.errors import ExitStatus
from sscard.files import write_private
from sscard.services.insurance import InsuranceError, PlatformUnreachable
from sscard.terminals.connection import Connection


class PlatformDown(InsuranceError):
    """The platform could not be reached before anything was registered."""

    exit_status = ExitStatus.BACKEND

    def __init__(self, url: str, cause: PlatformUnreachable) -> None:
        super().__init__(
            f"{cause.message_en}; check the platform at {url} — nothing was registered or charged",
            f"{cause.message_zh}；请检查医保平台 {url}——未登记、未扣费",
            code=cause.code,
        )


def _config_option(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--outbox",
        type=click.Path(dir_okay=False),
        default=None,
        help="Outbox SQLite file (overrides the configuration).",
    )(func)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        envvar="SSCARD_MEDICAL_CONFIG",
        default=None,
        help="Desk configuration TOML (env SSCARD_MEDICAL_CONFIG), e.g. examples/medical.toml.",
    )(func)


def _load(config_path: str | None, outbox: str | None) -> DeskConfig:
    config = DeskConfig.load(config_path)
    if outbox:
        config = replace(config, outbox=Path(outbox))
    return config


@click.group(name="medical")
def command() -> None:
    """Medical-insurance settlement with the card at the front desk (national platform)."""


def _keys(psam_reader: str | None) -> tuple[KeyProvider | None, Connection | None]:
    """Where the 3rd-gen RKSSSE / IRK keys come from: a PSAM reader, or with ``--sim``
    the simulator's TEST key set (the simulated card is personalised with it)."""
    from sscard.applets.keyprovider import PsamKeyProvider, SoftwareKeyProvider

    if psam_reader:
        from sscard.terminals.pcsc import PcscTransport

        psam = Connection(PcscTransport(psam_reader))
        psam.connect()
        return PsamKeyProvider(psam), psam
    if options().sim:
        from sscard.simulators.keys import default_key_set

        return SoftwareKeyProvider(default_key_set()), None
    return None, None


def _read_card(psam_reader: str | None, pin: str | None) -> CardIdentity:
    keys, psam = _keys(psam_reader)
    try:
        conn = open_connection(options())
        try:
            return read_identity(conn, keys, pin=pin)
        finally:
            conn.close()
    finally:
        if psam is not None:
            psam.close()


@command.command()
@common_options
@_config_option
@click.option("--items", "items_path", required=True, type=click.Path(dir_okay=False),
              help="Fee items (CSV or JSON, 2204 field names).")  # fmt: skip
@click.option("--yes", is_flag=True, help="Settle without asking after the pre-settlement.")
@click.option("--dept", default=None, help="Department code (dept_code).")
@click.option("--dept-name", default=None, help="Department name.")
@click.option("--med-type", default=None, help="Medical type, e.g. 11 general outpatient.")
@click.option("--diagnosis", default="", help="Main diagnosis code (dise_codg), optional.")
@click.option("--psam-reader", default=None, help="PC/SC reader holding the PSAM (3rd-gen keys).")
@click.option("--ask-pin/--no-pin", default=None,
              help="Ask for the card PIN (default: the configuration's pin_required).")  # fmt: skip
@click.option("--receipt", "receipt_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the receipt as JSON to this file.")  # fmt: skip
@handle_errors
def settle(
    config_path: str | None,
    outbox: str | None,
    items_path: str,
    yes: bool,
    dept: str | None,
    dept_name: str | None,
    med_type: str | None,
    diagnosis: str,
    psam_reader: str | None,
    ask_pin: bool | None,
    receipt_path: str | None,
) -> None:
    """Read the card and settle one outpatient visit (1101 … 2207)."""
    config = _load(config_path, outbox)
    opts = options()
    visit = VisitPlan.from_file(
        items_path,
        med_type=med_type or config.med_type,
        dept_code=dept if dept is not None else config.dept_code,
        dept_name=dept_name if dept_name is not None else config.dept_name,
        dise_codg=diagnosis,
    )  # the fee file is checked before the card or the platform is touched
    pin = None
    if ask_pin if ask_pin is not None else config.pin_required:
        pin = click.prompt("card PIN / 社保卡密码", hide_input=True, err=True)
    card = _read_card(psam_reader, pin)

    def confirm(pre: PreSettlement) -> bool:
        click.echo(pre.text(redact=opts.redact), err=opts.json)
        if yes:
            return True
        return click.confirm("settle? / 确认结算？", default=False, err=True)

    with config.open_client() as client:
        desk = config.front_desk(client)
        try:
            receipt = desk.settle(card, visit, confirm=confirm)
        except PlatformUnreachable as exc:
            raise PlatformDown(config.url, exc) from exc
    data = receipt.to_dict(redact=opts.redact)
    if receipt_path:
        write_private(receipt_path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    emit(data, receipt.text(redact=opts.redact))


@command.command()
@common_options
@_config_option
@click.argument("ident")
@click.option("--visit", is_flag=True, help="IDENT is a visit (mdtrt_id) without settlement.")
@handle_errors
def cancel(config_path: str | None, outbox: str | None, ident: str, visit: bool) -> None:
    """Cancel settlement IDENT (2208 → 2205 → 2202), or with --visit a registered visit."""
    config = _load(config_path, outbox)
    with config.open_client() as client:
        desk = config.front_desk(client)
        try:
            if visit:
                cleanup = desk.cancel_visit(ident)
                steps = " → ".join(cleanup.steps)
                emit(
                    {"mdtrt_id": ident, "steps": list(cleanup.steps)},
                    f"就诊已撤销 Visit cancelled: {ident} ({steps})",
                )
                return
            result = desk.cancel(ident)
        except PlatformUnreachable as exc:
            raise PlatformDown(config.url, exc) from exc
    emit(result.to_dict(), result.text())


@command.command()
@common_options
@_config_option
@click.option("--date", "day", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Day to reconcile (YYYY-MM-DD, default today).")  # fmt: skip
@handle_errors
def reconcile(config_path: str | None, outbox: str | None, day: datetime | None) -> None:
    """Compare the day's outbox with the platform's totals (3201); exit 5 if they differ."""
    config = _load(config_path, outbox)
    when = day.date() if day else date.today()
    with config.open_client() as client:
        try:
            report = config.front_desk(client).reconcile(when)
        except PlatformUnreachable as exc:
            raise PlatformDown(config.url, exc) from exc
    lines = [
        f"对账 Reconciliation {when.isoformat()}: "
        + ("平 balanced" if report.balanced else "不平 NOT balanced"),
        f"  local    : {report.local.count} settlements, total {report.local.medfee_sumamt}, "
        f"fund {report.local.fund_pay_sumamt}, account {report.local.acct_pay}, "
        f"cash {report.local.psn_cash_pay}",
        f"  platform : {report.platform.count} settlements, total "
        f"{report.platform.medfee_sumamt}, fund {report.platform.fund_pay_sumamt}, "
        f"account {report.platform.acct_pay}, cash {report.platform.psn_cash_pay}",
    ]
    lines += [f"  differs  : {name} local {a} / platform {b}"
              for name, (a, b) in report.differences.items()]  # fmt: skip
    lines += [f"  unresolved msgid {m} (manual reconciliation)" for m in report.unresolved]
    lines += [f"  split does not add up: msgid {m}" for m in report.unbalanced]
    emit(report.as_dict(), "\n".join(lines))
    if not report.balanced:
        sys.exit(ExitStatus.UNKNOWN)
