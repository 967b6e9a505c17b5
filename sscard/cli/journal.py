"""``sscard journal export|ack|purge``: hand a validator's completed taps to clearing.

Export writes the completed and the grey (uncertain, flagged ``grey`` = 1; see
docs/transit-recovery.md) unacknowledged taps as a clearing file and prints its
batch id; ``ack`` marks that batch sent once the clearing host confirmed the
upload (see :mod:`sscard.services.journal`). Until then the
same taps are exported again, so nothing is lost if an upload fails. ``purge``
removes, after a retention period, only what clearing already has and the debits
that never happened (docs/privacy.md §3).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from sscard.cli.common import common_options, emit, handle_errors
from sscard.errors import ConfigError
from sscard.services.journal import Journal, JournalOpenError

_DB = click.option(
    "--db",
    "db",
    required=True,
    type=click.Path(dir_okay=False),
    help="The validator's journal (SQLite file).",
)


def _open(db: str) -> Journal:
    # Never create a journal by accident: a typo in --db must not look like "nothing to send".
    if not Path(db).is_file():
        raise JournalOpenError(f"no journal at {db}", f"{db}处没有交易日志")
    return Journal(db)


@click.group(name="journal")
def command() -> None:
    """Export the validator journal for clearing, acknowledge uploads, purge old taps."""


def _acquirer(config: str | None, acquirer: str | None, operator: str | None) -> dict[str, str]:
    """The validator's acquirer institution ID and operator code, for a Parquet upload."""
    if config is not None:
        from sscard.applets.transit.config import ValidatorConfig

        cfg = ValidatorConfig.load(config)
        acquirer = acquirer or cfg.institution_id.hex().upper()
        operator = operator or cfg.operator.hex().upper()
    for name, value, width in (("--acquirer", acquirer, 16), ("--operator", operator, 4)):
        if value is None:
            raise ConfigError(
                f"a Parquet upload needs {name} (or --config with the validator's file)",
                f"Parquet上传需要{name}（或用--config指定验票机配置文件）",
            )
        if len(value) != width or any(c not in "0123456789ABCDEFabcdef" for c in value):
            raise ConfigError(
                f"{name} must be {width} hex digits", f"{name}应为{width}位十六进制数字"
            )
    assert acquirer is not None and operator is not None
    return {"acquirer_id": acquirer.upper(), "operator_id": operator.upper()}


@command.command()
@_DB
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "parquet"]),
    default="csv",
    show_default=True,
    help="parquet: the typed clearing upload (docs/clearing.md).",
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    default=None,
    help="Parquet: take acquirer and operator from this validator configuration.",
)
@click.option("--acquirer", default=None, help="Parquet: acquirer institution ID, 16 hex.")
@click.option("--operator", default=None, help="Parquet: operator code, 4 hex.")
@common_options
@handle_errors
def export(
    db: str,
    fmt: str,
    output: str,
    config: str | None,
    acquirer: str | None,
    operator: str | None,
) -> None:
    """Write completed and grey (uncertain), unsent taps to OUTPUT; print the batch id."""
    fields = _acquirer(config, acquirer, operator) if fmt == "parquet" else None
    with _open(db) as journal:
        batch_id = journal.export_unsent(
            "csv" if fmt == "csv" else "parquet" if fmt == "parquet" else "jsonl",
            output,
            fields=fields,
        )
        info = journal.batch(batch_id)
    emit(
        {
            "batch_id": batch_id,
            "rows": info.row_count,
            "total_amount_fen": info.total_amount,
            "format": fmt,
            "path": output,
            "sha256": info.sha256,
        },
        f"batch {batch_id}: {info.row_count} taps, {info.total_amount / 100:.2f} CNY -> {output}"
        f" / 批次{batch_id}：{info.row_count}笔",
    )


@command.command()
@_DB
@click.argument("batch_id")
@common_options
@handle_errors
def ack(db: str, batch_id: str) -> None:
    """Mark BATCH_ID sent: only after the clearing host confirmed the upload."""
    with _open(db) as journal:
        result = journal.ack(batch_id)
    note = " (already acknowledged / 已确认)" if result.already_acked else ""
    emit(
        {
            "batch_id": batch_id,
            "rows_marked": result.rows_marked,
            "already_acked": result.already_acked,
        },
        f"batch {batch_id}: {result.rows_marked} taps marked sent{note}",
    )


@command.command()
@_DB
@click.option(
    "--older-than-days",
    "days",
    required=True,
    type=click.IntRange(min=1),
    help="Remove acknowledged and failed taps last changed more than DAYS days ago.",
)
@common_options
@handle_errors
def purge(db: str, days: int) -> None:
    """Delete taps clearing already has (batch acknowledged) and failed taps, past DAYS.

    Pending, unknown and unacknowledged taps are kept whatever their age.
    """
    with _open(db) as journal:
        result = journal.purge(timedelta(days=days))
    emit(
        {
            "cutoff": result.cutoff.isoformat(),
            "removed_sent": result.sent,
            "removed_failed": result.failed,
            "kept_open": result.kept_open,
        },
        f"removed {result.removed} taps ({result.sent} acknowledged, {result.failed} failed)"
        f" older than {days} days; kept {result.kept_open} still open"
        f" / 已删除{result.removed}笔，保留未完结{result.kept_open}笔",
    )
