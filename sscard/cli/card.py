"""Front-desk commands: ``sscard read``, ``sscard pin verify|change``, ``sscard auth``.

The social security application as a hospital desk uses it (docs/reference.md §C;
the applet is :mod:`sscard.applets.ssse`). Personal data is masked
unless ``--no-redact``; PINs are typed at a prompt without echo or read from stdin
(``--pin-stdin``), never taken as an argument (the process list would show them).
Errors print one bilingual line with the unified-interface code (§C4.5), exit 1.

Card keys: ``--keys FILE`` (a key set), else ``--psam-reader R`` (a PSAM on another
PC/SC reader), else with ``--sim`` the shipped TEST key set; on PC/SC without keys
``read`` reads what needs none and says what it skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from sscard.applets.keyprovider import (
    KeyProvider,
    PsamKeyProvider,
    PsamMissing,
    SoftwareKeyProvider,
)
from sscard.applets.ssse import CardRead, SsseReader
from sscard.applets.unified import format_card_bas
from sscard.cli.common import (
    CliOptions,
    common_options,
    emit,
    handle_errors,
    options,
    read_secret_line,
)
from sscard.cli.connect import open_connection
from sscard.errors import SscardError
from sscard.terminals.connection import Connection
from sscard.terminals.errors import TerminalError
from sscard.text import display_width, pad

__all__ = ["auth_command", "pin_group", "read_command"]

F = TypeVar("F", bound=Callable[..., Any])

SKIPPED_TEXT = {
    "holder": (
        "holder data: a 3.0 card needs RKSSSE (use --keys or --psam-reader)",
        "持卡人信息：3.0卡需RKSSSE外部认证（请用 --keys 或 --psam-reader）",
    ),
    "authentication": (
        "genuineness check: needs the IRK (use --keys or --psam-reader)",
        "真伪验证：需IRK密钥（请用 --keys 或 --psam-reader）",
    ),
}


def _with_code(func: F) -> F:
    """Add the unified code after the message (what to do comes first), then let
    ``handle_errors`` print it."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SscardError as exc:
            if not options().json:  # JSON output carries "code" already
                exc.message_en = f"{exc.message_en} [{exc.code}]"
                exc.args = (exc.message_en,)
            raise

    wrapper.__name__, wrapper.__doc__ = func.__name__, func.__doc__
    return wrapper  # type: ignore[return-value]


def _keys_options(func: F) -> F:
    func = click.option(
        "--psam-reader",
        default=None,
        help="PC/SC reader (index or name substring) holding the PSAM that supplies card keys.",
    )(func)
    return click.option(
        "--keys",
        "keys_file",
        type=click.Path(dir_okay=False, exists=True),
        default=None,
        help="Key-set JSON file with the SSSE master keys (software key provider).",
    )(func)


@contextmanager
def _session(keys_file: str | None, psam_reader: str | None) -> Iterator[SsseReader]:
    """The card connection, the key provider (and its PSAM connection), closed afterwards."""
    opts: CliOptions = options()
    keys: KeyProvider | None = None
    psam: Connection | None = None
    if keys_file:
        from sscard.simulators.keys import KeySet

        keys = SoftwareKeyProvider(KeySet.load(keys_file))
    elif psam_reader:
        psam = _open_psam(psam_reader)
        keys = PsamKeyProvider(psam)
    elif opts.sim:
        from sscard.simulators.keys import default_key_set

        keys = SoftwareKeyProvider(default_key_set())
    try:
        conn = open_connection(opts)
        try:
            yield SsseReader(conn, keys)
        finally:
            conn.close()
    finally:
        if psam is not None:
            psam.close()


def _open_psam(reader: str) -> Connection:
    from sscard.terminals.pcsc import PcscTransport

    conn = Connection(PcscTransport(reader))
    try:
        conn.connect()
    except TerminalError:
        conn.close()
        raise PsamMissing() from None
    return conn


def _read_pin(prompt: str, pin_stdin: bool) -> str:
    if pin_stdin:
        return read_secret_line()
    return str(click.prompt(prompt, hide_input=True, err=True))


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(display_width(label) for label, _ in rows)
    return "\n".join(f"  {pad(label, width)}  {value}" for label, value in rows)


def _render(read: CardRead, redact: bool) -> str:
    d = read.to_dict(redact)
    issuer = d["issuer"]
    region = f"{issuer['region_zh']} {issuer['region_en']} ({issuer['region_code']})".strip()
    expiry = issuer["expiry_date"] + ("  已过期 EXPIRED" if read.expired else "")
    alg = "SM4" if read.application.algorithm == 0x03 else "3DES"
    rows = [
        ("地区 Region", region),
        ("代别 Generation", f"{read.generation} ({alg})"),
        ("卡号 Card number", issuer["card_number"]),
        ("卡识别码 Card ID", issuer["card_id"]),
        ("卡类别 Card type", issuer["card_type"]),
        ("规范版本 Spec version", issuer["spec_version"]),
        ("发卡日期 Issue date", issuer["issue_date"]),
        ("有效期 Expiry date", expiry),
    ]
    holder = d["holder"]
    if holder is not None:
        rows += [
            ("社会保障号码 SSN", holder["ssn"]),
            ("姓名 Name", holder["name"]),
            ("性别 Sex", f"{holder['sex_zh']} {holder['sex_en']}"),
            ("民族 Ethnicity", holder["ethnicity"]),
            ("出生地 Birthplace", holder["birthplace"]),
            ("出生日期 Birth date", holder["birth_date"]),
        ]
    genuine = {True: "✓ 真卡 genuine", None: "未验证 not checked"}[read.genuine]
    rows.append(("真伪 Genuine", genuine))
    if read.pin_verified:
        rows.append(("密码 PIN", "✓ 已验证 verified"))
    lines = ["社会保障卡 / Social security card", _table(rows)]
    for what in read.skipped:
        en, zh = SKIPPED_TEXT.get(what, (what, what))
        lines.append(f"skipped / 未读取: {en} / {zh}")
    return "\n".join(lines)


# =========================================================================== read


@click.command(name="read")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "ireadcardbas"]),
    default="table",
    show_default=True,
    help="Output: bilingual table, JSON, or the iReadCardBas string (§C4.2).",
)
@click.option("--verify-pin", is_flag=True, help="Also verify the PIN (prompted, no echo).")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN as one line from stdin.")
@click.option("--device-number", default="", help="Terminal device number (iReadCardBas field 11).")
@_keys_options
@common_options
@handle_errors
@_with_code
def read_command(
    fmt: str,
    verify_pin: bool,
    pin_stdin: bool,
    device_number: str,
    keys_file: str | None,
    psam_reader: str | None,
) -> None:
    """Read the social security card: issuer and holder data, genuineness, expiry."""
    opts = options()
    pin = _read_pin("PIN / 密码", pin_stdin) if verify_pin or pin_stdin else None
    with _session(keys_file, psam_reader) as reader:
        read = reader.read(verify_pin=pin)
    if fmt == "ireadcardbas":
        click.echo(format_card_bas(read, device_number=device_number, redact=opts.redact))
    elif fmt == "json" or opts.json:
        data = read.to_dict(opts.redact)
        # What was skipped, and why, in both languages: never a silent empty holder.
        data["skipped_why"] = [
            dict(zip(("en", "zh"), SKIPPED_TEXT.get(w, (w, w)), strict=True)) for w in read.skipped
        ]
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        click.echo(_render(read, opts.redact))


# =========================================================================== pin


@click.group(name="pin")
def pin_group() -> None:
    """Verify or change the social security card PIN (6 digits)."""


@pin_group.command(name="verify")
@click.option("--pin-stdin", is_flag=True, help="Read the PIN as one line from stdin.")
@common_options
@handle_errors
@_with_code
def pin_verify(pin_stdin: bool) -> None:
    """Verify the PIN; a wrong PIN says how many tries are left."""
    pin = _read_pin("PIN / 密码", pin_stdin)
    with _session(None, None) as reader:
        reader.verify_pin(pin)
    emit({"pin": "verified"}, "PIN correct / 密码正确")


@pin_group.command(name="change")
@click.option("--pin-stdin", is_flag=True, help="Read the old and new PIN as two lines of stdin.")
@common_options
@handle_errors
@_with_code
def pin_change(pin_stdin: bool) -> None:
    """Change the PIN (old PIN, new PIN twice at the prompt)."""
    old = _read_pin("Old PIN / 原密码", pin_stdin)
    new = _read_pin("New PIN / 新密码", pin_stdin)
    if not pin_stdin and _read_pin("Repeat new PIN / 再次输入新密码", False) != new:
        raise SscardError("the new PINs do not match", "两次输入的新密码不一致", code=-34)
    with _session(None, None) as reader:
        reader.change_pin(old, new)
    emit({"pin": "changed"}, "PIN changed / 密码已修改")


# =========================================================================== auth


@click.command(name="auth")
@_keys_options
@common_options
@handle_errors
@_with_code
def auth_command(keys_file: str | None, psam_reader: str | None) -> None:
    """Prove the card genuine (internal authentication with the IRK, §C3.4)."""
    with _session(keys_file, psam_reader) as reader:
        app = reader.select()
        reader.authenticate()
    emit(
        {"genuine": True, "generation": app.generation},
        f"✓ genuine card (generation {app.generation}) / 真卡（{app.generation}代卡）",
    )
