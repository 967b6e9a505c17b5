"""``sscard readers``: the PC/SC readers, their index, card presence and ATR."""

from __future__ import annotations

from typing import Any

import click

from sscard.cli.common import common_options, emit, handle_errors
from sscard.terminals import pcsc


def reader_table() -> list[dict[str, Any]]:
    """One row per reader; ``index`` is what ``-r N`` takes (ignored readers get none)."""
    sc = pcsc.scard()
    with pcsc.PcscContext() as ctx:
        names = ctx.list_readers()
        states: list[tuple[str, int, list[int]]] = []
        if names:
            hresult, states = ctx.status_change([(n, sc.SCARD_STATE_UNAWARE) for n in names], 0)
            if hresult != pcsc.S_SUCCESS:
                raise pcsc.error_for("SCardGetStatusChange", hresult)
    usable = pcsc.usable_readers(names)
    rows = []
    for name, state, atr in states:
        present = bool(state & sc.SCARD_STATE_PRESENT)
        rows.append(
            {
                "index": usable.index(name) if name in usable else None,
                "name": name,
                "card": present,
                "atr": bytes(atr).hex().upper() if present else None,
                "in_use": bool(state & sc.SCARD_STATE_INUSE),
                "ignored": name not in usable,
            }
        )
    return rows


@click.command(name="readers")
@common_options
@handle_errors
def command() -> None:
    """List PC/SC readers (index for -r, card present, ATR)."""
    rows = reader_table()
    lines = []
    for row in rows:
        index = "-" if row["index"] is None else str(row["index"])
        card = f"card {row['atr']}" if row["card"] else "empty"
        flags = " (ignored: SSCARD_READER_IGNORE)" if row["ignored"] else ""
        lines.append(f"{index:>2}  {row['name']}  [{card}]{flags}")
    emit(rows, "\n".join(lines) if lines else "no readers")
