"""``sscard apdu decode HEX``: name a command APDU or explain a status word."""

from __future__ import annotations

import click

from sscard.apdu import ApduFormatError, Command, Response, sw_text
from sscard.apdu.errors import lookup
from sscard.apdu.tlv import ber_decode
from sscard.cli.common import common_options, emit, handle_errors
from sscard.errors import SscardError


@click.group(name="apdu")
def command() -> None:
    """Decode or send APDUs."""


def _hex(text: tuple[str, ...]) -> bytes:
    joined = "".join(text).replace(":", "").replace(" ", "")
    try:
        return bytes.fromhex(joined)
    except ValueError:
        raise ApduFormatError(f"not hex: {joined!r}", f"不是十六进制：{joined!r}") from None


@command.command()
@click.argument("hex_bytes", nargs=-1, required=True)
@common_options
@handle_errors
def decode(hex_bytes: tuple[str, ...]) -> None:
    """Decode HEX: a 2-byte status word, else a command APDU (or a response with --response)."""
    raw = _hex(hex_bytes)
    if len(raw) == 2 and raw[0] & 0xF0 in (0x60, 0x90):  # SW1 is always 6X or 9X
        sw = int.from_bytes(raw, "big")
        en, zh = sw_text(sw)
        entry = lookup(sw)
        error = entry.error.__name__ if entry is not None and entry.error is not None else None
        emit(
            {"sw": f"{sw:04X}", "en": en, "zh": zh, "error": error},
            f"SW {sw:04X}: {en} / {zh}" + (f"  [{error}]" if error else ""),
        )
        return
    cmd = Command.parse(raw)
    lines = [
        repr(cmd),
        f"  case {cmd.case}{' extended' if cmd.is_extended else ''}"
        f"{', secure messaging' if cmd.secure_messaging else ''}",
        f"  CLA={cmd.cla:02X} INS={cmd.ins:02X} P1={cmd.p1:02X} P2={cmd.p2:02X}"
        f" Lc={len(cmd.data) if cmd.data else '-'} Le={cmd.le if cmd.le is not None else '-'}",
    ]
    if cmd.data:
        try:
            objs = ber_decode(cmd.data)
            if objs and bytes(b"".join(o.encode() for o in objs)) == cmd.data:
                lines.append("  data as BER-TLV: " + ", ".join(repr(o) for o in objs))
        except SscardError:
            pass
    emit(
        {
            "name": cmd.name,
            "case": cmd.case,
            "extended": cmd.is_extended,
            "secure_messaging": cmd.secure_messaging,
            "cla": cmd.cla,
            "ins": cmd.ins,
            "p1": cmd.p1,
            "p2": cmd.p2,
            "data": cmd.data.hex().upper(),
            "le": cmd.le,
        },
        "\n".join(lines),
    )


@command.command(name="decode-response")
@click.argument("hex_bytes", nargs=-1, required=True)
@common_options
@handle_errors
def decode_response(hex_bytes: tuple[str, ...]) -> None:
    """Decode HEX as a response APDU (data and status word)."""
    resp = Response.parse(_hex(hex_bytes))
    emit(
        {"data": resp.data.hex().upper(), "sw": f"{resp.sw:04X}", "text": resp.text},
        f"{resp.data.hex().upper() or '(no data)'}\n{resp.text}",
    )
