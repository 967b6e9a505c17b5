"""``sscard clearing run``: clear a day of validator uploads (docs/clearing.md).

Reads every ``*.parquet`` upload under ``--input`` (the journal's ``export --format
parquet`` or ``sscard sim fleet``), checks each TAC with the issuer keys of
``--keys``, settles grey taps, nets per issuing city and acquirer, and writes
accepted/rejected Parquet, ``settle_<date>.csv``, ``positions_<date>.csv``,
``gaps.csv``, ``report.html`` and ``summary.json`` to ``--out`` (atomically: a failed
run leaves the previous outputs). Progress goes to stderr; ``--json`` prints the
summary with timings on stdout.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from sscard.cli.common import common_options, emit, handle_errors, options


@click.group(name="clearing")
def command() -> None:
    """Clearing (清分结算): verify, de-duplicate and net validator uploads."""


@command.command(name="run")
@click.option(
    "--input",
    "input_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Directory of upload files (*.parquet, searched recursively).",
)
@click.option(
    "--keys",
    required=True,
    type=click.Path(dir_okay=False),
    help="Issuer TAC keys: sscard-issuer-keys/1, or a simulator key set.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Output directory (files replaced atomically).",
)
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "spark", "python"]),
    default="duckdb",
    show_default=True,
    help="python: the plain-loop baseline (slow; for checks).",
)
@click.option("--master", default=None, help="Spark master URL (default local[*]).")
@click.option(
    "--fee-bp",
    type=click.IntRange(0, 10_000),
    default=30,
    show_default=True,
    help="Clearing fee in basis points of the gross.",
)
@click.option(
    "--as-of",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Clearing date for grey expiry (default: the latest upload date).",
)
@click.option(
    "--unknown-issuer",
    type=click.Choice(["error", "reject"]),
    default="error",
    show_default=True,
    help="reject: refuse an unknown issuer's rows with 09.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@common_options
@handle_errors
def run(
    input_dir: str, keys: str, out_dir: str, engine: str, master: str | None, fee_bp: int,
    as_of: Any, unknown_issuer: str, quiet: bool,
) -> None:  # fmt: skip
    """Clear the uploads under INPUT into OUT."""
    from sscard.clearing.keys import IssuerKeys
    from sscard.clearing.run import clear

    start = time.perf_counter()

    def progress(message: str) -> None:
        if not quiet:
            click.echo(f"[{time.perf_counter() - start:7.1f}s] {message}", err=True)

    result = clear(
        input_dir,
        IssuerKeys.load(keys),
        out_dir,
        engine=engine,  # type: ignore[arg-type]
        master=master,
        as_of=as_of.date() if as_of is not None else None,
        fee_bp=fee_bp,
        unknown_issuer=unknown_issuer,  # type: ignore[arg-type]
        progress=progress,
    )
    s = result.summary
    seconds = time.perf_counter() - start
    out = {
        **{k: s[k] for k in ("as_of", "fee_bp", "totals", "reasons", "gaps", "clear_dates")},
        "engine": engine,
        "out": str(result.out),
        "seconds": round(seconds, 3),
        "taps_per_second": round(s["totals"]["rows"] / seconds, 1) if seconds else None,
        "timings": {k: round(v, 3) for k, v in result.timings.items()},
    }
    t = s["totals"]
    emit(
        out,
        f"cleared {t['rows']:,} rows: {t['paid']:,} paid ({t['paid_fen'] / 100:,.2f} CNY),"
        f" {t['refused']:,} refused, {t['duplicates']:,} duplicates;"
        f" gaps {s['gaps']['terminal']} terminal / {s['gaps']['card']} card -> {result.out}\n"
        f"清分完成：{t['rows']:,}笔，结算{t['paid']:,}笔，拒付{t['refused']:,}笔，重复{t['duplicates']:,}笔",
    )
    if options().json:
        sys.stdout.flush()
