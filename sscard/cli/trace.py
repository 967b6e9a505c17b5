"""``sscard trace show FILE``: pretty-print a JSON-lines APDU trace.

A trace recorded with ``--no-redact`` is shown redacted unless ``trace show`` is
given ``--no-redact`` too (one masking policy for every output path).
"""

from __future__ import annotations

import click

from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.terminals.tracing import format_record, read_trace, redact_records


@click.group(name="trace")
def command() -> None:
    """APDU traces written with --trace."""


@command.command(name="show")
@click.argument("trace_file", type=click.Path(dir_okay=False))
@common_options
@handle_errors
def show(trace_file: str) -> None:
    """Print a trace: one line per session, command, response and error."""
    records = list(read_trace(trace_file))
    if options().redact:
        records = redact_records(records)
    emit(records, "\n".join(format_record(r) for r in records))
