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
    assert code == 1  # odd number of hex digits: not hex
    code, out = run("apdu", "decode", "00B2", "0104", "00", "--json")
    assert code == 0 and json.loads(out)["name"] == "READ RECORD"
    code, out = run("apdu", "decode", "00A4040008A0")
    assert code == 1
    assert "Lc=8" in out and "Traceback" not in out
