"""``sscard journal export|ack``: hand a validator's completed taps to clearing.

Export writes the completed and the grey (uncertain, flagged ``grey`` = 1; see
docs/transit-recovery.md) unacknowledged taps as a clearing file and prints its
batch id; ``ack`` marks that batch sent once the clearing host confirmed the
upload (see :mod:`sscard.services.journal`, issue 6 part 3). Until then the
same taps are exported again, so nothing is lost if an upload fails.
"""

from __future__ import annotations

from pathlib import Path

import click

from sscard.cli.common import common_options, emit, handle_errors
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
    """Export the validator journal for clearing and acknowledge uploads."""


@command.command()
@_DB
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@common_options
@handle_errors
def export(db: str, fmt: str, output: str) -> None:
    """Write completed and grey (uncertain), unsent taps to OUTPUT; print the batch id."""
    with _open(db) as journal:
        batch_id = journal.export_unsent("csv" if fmt == "csv" else "jsonl", output)
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
