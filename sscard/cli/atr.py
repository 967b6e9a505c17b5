"""``sscard atr``: the card's ATR decoded (ISO 7816-3 and the SSC pattern, reference §C5)."""

from __future__ import annotations

import click

from sscard.apdu.errors import ApduFormatError
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.terminals.atr import Atr, parse_atr


def describe(atr: Atr) -> str:
    lines = [
        f"ATR        {atr.raw.hex(' ').upper()}",
        f"TS         {atr.ts:02X} ({atr.convention} convention)",
        f"T0         {atr.t0:02X} (Y1={atr.t0 >> 4:X}, K={atr.t0 & 0x0F} historical bytes)",
    ]
    lines += [f"{b.name:<10} {b.value:02X}" for b in atr.interface]
    lines.append(f"protocols  {', '.join(f'T={p}' for p in atr.protocols)}")
    lines.append(f"historical {atr.historical.hex(' ').upper() or '-'}")
    if atr.tck is not None:
        lines.append(f"TCK        {atr.tck:02X} ({'ok' if atr.tck_ok else 'WRONG'})")
    ssc = atr.ssc
    if ssc is not None:
        lines += [
            "social security card pattern (3B 6D 00 00 + 13 historical bytes):",
            f"  chip maker {ssc.chip_maker} {ssc.chip_maker_name or '(unknown)'}",
            f"  COS        {ssc.cos} {ssc.cos_name or ''}".rstrip(),
            f"  card maker {ssc.card_maker} {ssc.card_maker_name or '(unknown)'}",
            f"  serial     {ssc.serial}",
        ]
    return "\n".join(lines)


@click.command(name="atr")
@click.argument("atr_hex", required=False)
@common_options
@handle_errors
def command(atr_hex: str | None) -> None:
    """Decode the ATR of the card in the reader (or of ATR_HEX, offline)."""
    if atr_hex is not None:
        try:
            raw = bytes.fromhex(atr_hex.replace(" ", "").replace(":", ""))
        except ValueError:
            raise ApduFormatError(f"not hex: {atr_hex!r}", f"不是十六进制：{atr_hex!r}") from None
        reader, protocol = None, None
    else:
        from sscard.cli.connect import open_connection

        conn = open_connection(options())
        try:
            raw, reader, protocol = conn.atr, conn.reader, conn.protocol
        finally:
            conn.close()
    atr = parse_atr(raw)
    data = atr.as_dict() | {"reader": reader, "active_protocol": protocol}
    text = describe(atr)
    if reader is not None:
        text = f"reader     {reader} (active {protocol})\n" + text
    emit(data, text)
