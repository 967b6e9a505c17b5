"""The CLI entry: version, apdu decode, errors as one bilingual line."""

from __future__ import annotations

import json

from click.testing import CliRunner

from sscard import __version__
from sscard.cli import main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_version():
    assert run("version") == (0, f"sscard {__version__}\n")
    code, out = run("--json", "version")
    assert code == 0 and json.loads(out) == {"version": __version__}


def test_apdu_decode_command():
    code, out = run("apdu", "decode", "00A4040008A00000063201010500")
    assert code == 0
    assert out.splitlines()[0] == "SELECT 00A4040008 A000000632010105 Le=00"


def test_apdu_decode_status_word_bilingual():
    code, out = run("apdu", "decode", "6A82")
    assert code == 0
    assert "file not found" in out and "文件未找到" in out


def test_apdu_decode_json_and_bad_input():
    code, out = run("apdu", "decode", "--json", "8050030 2B")
    assert code == 2  # odd number of hex digits: not hex (usage)
    code, out = run("apdu", "decode", "00B2", "0104", "00", "--json")
    assert code == 0 and json.loads(out)["name"] == "READ RECORD"
    code, out = run("apdu", "decode", "00A4040008A0")
    assert code == 2
    assert "Lc=8" in out and "Traceback" not in out


def test_os_and_database_errors_are_one_bilingual_line():
    import sqlite3

    import click

    from sscard.cli.common import common_options, handle_errors

    @click.command()
    @common_options
    @click.argument("kind")
    @handle_errors
    def boom(kind: str) -> None:
        if kind == "os":
            raise PermissionError(13, "Permission denied", "/readonly/card.json")
        raise sqlite3.OperationalError("database is locked")

    result = CliRunner().invoke(boom, ["os"])
    assert result.exit_code == 6
    assert result.output.strip() == (
        "error: system error: Permission denied (/readonly/card.json)"
        " / 系统错误：Permission denied (/readonly/card.json)"
    )
    result = CliRunner().invoke(boom, ["db", "--json"])
    assert result.exit_code == 6
    assert json.loads(result.output)["error"] == "SystemFailure"
    assert "database is locked" in json.loads(result.output)["message_en"]
