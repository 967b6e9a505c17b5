"""``sscard apdu send HEX...``: send APDUs to the card and decode the answers.

Arguments are joined (spaces allowed); ``;`` separates several APDUs, sent in
one PC/SC transaction. 61xx/6Cxx are followed unless ``--strict``. Response
data that the trace would redact (READ RECORD answers, authentication
cryptograms: see sscard.terminals.tracing) is shown only with ``--no-redact``.
"""

from __future__ import annotations

from typing import Any

import click

from sscard.apdu import ApduFormatError, Command
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.cli.connect import open_connection
from sscard.terminals.tracing import Redaction


def parse_apdus(args: tuple[str, ...]) -> list[Command]:
    joined = "".join(args).replace(" ", "").replace(":", "")
    commands = []
    for part in filter(None, joined.split(";")):
        try:
            raw = bytes.fromhex(part)
        except ValueError:
            raise ApduFormatError(f"not hex: {part!r}", f"不是十六进制：{part!r}") from None
        commands.append(Command.parse(raw))
    if not commands:
        raise ApduFormatError("no APDU given", "未给出 APDU")
    return commands


@click.command(name="send")
@click.argument("hex_apdus", nargs=-1, required=True)
@click.option("--strict", is_flag=True, help="Do not follow 61xx / 6Cxx.")
@common_options
@handle_errors
def send_command(hex_apdus: tuple[str, ...], strict: bool) -> None:
    """Send APDUs (hex; ';' between several) and print the decoded responses."""
    commands = parse_apdus(hex_apdus)
    opts = options()
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    with open_connection(opts, strict=strict) as conn, conn.transaction():
        for cmd in commands:
            response = conn.transmit(cmd)
            hidden = opts.redact and Redaction.for_command(bytes(cmd)).response and response.data
            data = None if hidden else response.data.hex().upper()
            results.append(
                {
                    "command": bytes(cmd).hex().upper(),
                    "name": cmd.name,
                    "data": data,
                    "redacted": len(response.data) if hidden else 0,
                    "sw": f"{response.sw:04X}",
                    "status": response.text,
                }
            )
            shown = (
                f"<{len(response.data)} bytes redacted; --no-redact shows them>"
                if hidden
                else response.data.hex(" ").upper()
            )
            lines.append(f"> {cmd!r}")
            lines.append(f"< {shown + '  ' if shown else ''}{response.text}")
    emit(results if len(results) > 1 else results[0], "\n".join(lines))
