"""``sscard medical``: settle, cancel, reconcile and recover at the medical front desk.

``settle --items visit.csv`` reads the card, runs 1101 → 2201 → 2203/2204 →
2206, shows the split, asks (unless ``--yes``), settles (2207) and prints the
receipt (``--json``: the receipt as JSON). ``cancel SETL_ID`` runs 2208 → 2205
→ 2202; ``cancel --visit MDTRT_ID`` cancels a registered, unsettled visit.
``reconcile --date`` sends the day's 3201s (exit status 5 when they differ or a
row is unresolved). ``recover`` finishes what an interrupted desk left behind;
every other command does that first too, and says what it did on stderr.
The national interface and the sscard profile: docs/reference.md §M.

Click's own messages (a missing option, a bad value, Ctrl-C at a prompt) are
given in English and Chinese like every other error of these commands.

The desk configuration comes from ``--config FILE`` (env ``SSCARD_MEDICAL_CONFIG``,
e.g. examples/medical.toml); env ``SSCARD_INSURANCE_URL`` overrides its platform URL.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from sscard.applets.keyprovider import KeyProvider
from sscard.applets.medical import (
    CardIdentity,
    DeskConfig,
    PreSettlement,
    Receipt,
    VisitPlan,
    read_identity,
)
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.cli.connect import open_connection
from sscard.clock import beijing_now
from sscard.errors import ExitStatus, SscardError
from sscard.files import write_private
from sscard.services.insurance import InsuranceError, PlatformUnreachable
from sscard.terminals.connection import Connection

F = TypeVar("F", bound=Callable[..., Any])


class PlatformDown(InsuranceError):
    """The platform could not be reached before anything was registered."""

    exit_status = ExitStatus.BACKEND

    def __init__(self, url: str, cause: PlatformUnreachable) -> None:
        super().__init__(
            f"{cause.message_en}; check the platform at {url} — nothing was registered or charged",
            f"{cause.message_zh}；请检查医保平台 {url}——未登记、未扣费",
            code=cause.code,
        )


class OperatorAborted(SscardError):
    """Ctrl-C (or end of input) at a prompt before anything was sent."""

    message_en = "aborted by the operator; nothing was registered or charged"
    message_zh = "操作员已中止；未登记、未扣费"


def _no_abort(func: F) -> F:
    """click's bare "Aborted!" becomes a bilingual error (inside ``handle_errors``)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.Abort:
            raise OperatorAborted() from None

    return wrapper  # type: ignore[return-value]


_KIND_ZH = {"option": "选项", "argument": "参数", "parameter": "参数"}


def _usage_zh(exc: click.UsageError) -> str:
    """The Chinese half of one of click's usage errors (no English inside it)."""
    ctx = exc.ctx
    if isinstance(exc, click.MissingParameter):
        hint = exc.param.get_error_hint(ctx) if exc.param is not None and ctx else ""
        kind = _KIND_ZH.get(
            exc.param_type or (exc.param.param_type_name if exc.param else ""), "参数"
        )
        return f"缺少{kind} {hint}".rstrip()
    if isinstance(exc, click.NoSuchOption):
        return f"没有此选项：{exc.option_name}"
    if isinstance(exc, click.BadOptionUsage):
        return f"选项用法错误：{exc.option_name}"
    if isinstance(exc, click.BadParameter):
        hint = exc.param.get_error_hint(ctx) if exc.param is not None and ctx else ""
        return f"{hint} 的值无效".strip()
    message = exc.format_message()
    if "No such command" in message:
        return "没有此命令"
    if "unexpected extra argument" in message:
        return "多余的参数"
    return "命令行用法错误"


class BilingualUsageError(click.UsageError):
    """A click usage error told in both languages, exit status 2 (usage)."""

    def __init__(self, exc: click.UsageError) -> None:
        self.message_en = exc.format_message().rstrip(".")
        self.message_zh = _usage_zh(exc)
        super().__init__(f"{self.message_en} / {self.message_zh}", exc.ctx)

    def show(self, file: Any = None) -> None:
        path = self.ctx.command_path if self.ctx else "sscard medical"
        click.echo(f"error: {self.message}", err=True)
        click.echo(f"see `{path} --help` / 用法见 `{path} --help`", err=True)


@contextlib.contextmanager
def _bilingual_usage() -> Iterator[None]:
    """Click's own usage errors, re-raised with the Chinese half."""
    try:
        yield
    except BilingualUsageError:
        raise
    except click.UsageError as exc:
        raise BilingualUsageError(exc) from None


class _Bilingual(click.Command):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _bilingual_usage():
            return super().parse_args(ctx, args)


class _BilingualGroup(click.Group):
    command_class = _Bilingual

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        with _bilingual_usage():
            return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        with _bilingual_usage():
            return super().resolve_command(ctx, args)


def _notify(en: str, zh: str) -> None:
    """What the recovery did, on stderr (stdout stays the command's own output)."""
    click.echo(f"recovery: {en} / 恢复：{zh}", err=True)


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


@click.group(name="medical", cls=_BilingualGroup)
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
              help="Fee items (CSV or JSON, 2204 field names; UTF-8 or GBK).")  # fmt: skip
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
@click.option("--settle-again", is_flag=True,
              help="Settle although the patient has a settlement recovered after an "
                   "interruption (it is for a different visit).")  # fmt: skip
@handle_errors
@_no_abort
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
    settle_again: bool,
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
        try:
            return click.confirm("settle? / 确认结算？", default=False, err=True)
        except click.Abort:
            return False  # Ctrl-C or no input at the question: not confirmed

    def deliver(receipt: Receipt) -> None:
        data = receipt.to_dict(redact=opts.redact)
        if receipt_path:
            write_private(receipt_path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
        emit(data, receipt.text(redact=opts.redact))

    with config.open_client() as client:
        desk = config.front_desk(client, notify=_notify)
        try:
            desk.settle(card, visit, confirm=confirm, settle_again=settle_again, deliver=deliver)
        except PlatformUnreachable as exc:
            raise PlatformDown(config.url, exc) from exc


@command.command()
@common_options
@_config_option
@click.argument("ident")
@click.option("--visit", is_flag=True, help="IDENT is a visit (mdtrt_id) without settlement.")
@handle_errors
@_no_abort
def cancel(config_path: str | None, outbox: str | None, ident: str, visit: bool) -> None:
    """Cancel settlement IDENT (2208 → 2205 → 2202), or with --visit a registered visit."""
    config = _load(config_path, outbox)
    with config.open_client() as client:
        desk = config.front_desk(client, notify=_notify)
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
              help="Day to reconcile (YYYY-MM-DD, default today in Beijing).")  # fmt: skip
@handle_errors
@_no_abort
def reconcile(config_path: str | None, outbox: str | None, day: datetime | None) -> None:
    """Recover, then send the day's 3201s; exit 5 if they differ or a row is unresolved."""
    config = _load(config_path, outbox)
    when = day.date() if day else beijing_now().date()
    with config.open_client() as client:
        try:
            report = config.front_desk(client, notify=_notify).reconcile(when)
        except PlatformUnreachable as exc:
            raise PlatformDown(config.url, exc) from exc
    local = report.local
    lines = [
        f"对账 Reconciliation {when.isoformat()}: "
        + ("平 balanced" if report.balanced else "不平 NOT balanced"),
        f"  local    : {local.count} settlements, total {local.medfee_sumamt}, "
        f"fund {local.fund_pay_sumamt}, account {local.acct_pay}, cash {local.psn_cash_pay}",
    ]
    for s in report.statements:
        lines.append(
            f"  3201 {s.insutype}/{s.clr_type}/{s.setl_optins}: {s.local.count} settlements,"
            f" total {s.local.medfee_sumamt} -> {s.stmt_rslt} {s.stmt_rslt_dscr}"
        )
    if not report.statements:
        lines.append("  no settlements recorded that day: no 3201 sent / 当日无结算，未发送3201")
    lines += [f"  split does not add up: msgid {m}" for m in report.unbalanced]
    emit(report.as_dict(), "\n".join(lines))
    if not report.balanced:
        sys.exit(ExitStatus.UNKNOWN)


@command.command()
@common_options
@_config_option
@click.option("--retry-manual", is_flag=True,
              help="Also retry rows flagged for manual reconciliation.")  # fmt: skip
@handle_errors
@_no_abort
def recover(config_path: str | None, outbox: str | None, retry_manual: bool) -> None:
    """Finish what an interrupted desk left: resolve its transactions, cancel its visits.

    Exit 0 when outbox and platform agree, 5 while something still needs a person.
    """
    config = _load(config_path, outbox)
    with config.open_client() as client:
        try:
            result = config.front_desk(client).recover(retry_manual=retry_manual)
        except PlatformUnreachable as exc:
            raise PlatformDown(config.url, exc) from exc
    emit(result.to_dict(), result.text())
    if not result.complete:
        sys.exit(ExitStatus.UNKNOWN)
