"""Hostile input files: one bilingual error line and exit status 2, never a traceback.

A card image with a 5000-digit integer or deep nesting, a trace with a dict
where a string belongs or deep nesting, an identity policy with ``min_age = inf``, and
``fare_table = "/dev/zero"`` (memory grew to 23 GB). Every file read from user input
goes through sscard.files (regular files only, bounded size, bounded JSON/TOML);
the /dev/zero case also runs in a subprocess under a 1 GB address-space limit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from sscard.cli import main
from sscard.errors import ExitStatus
from sscard.files import (
    MAX_INPUT_BYTES,
    InputFileRejected,
    parse_json,
    parse_toml,
    read_bytes,
    read_text,
)
from sscard.simulators.profile import new_card

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    for name in ("SSCARD_AUDIT_DB", "SSCARD_IDENTITY_POLICY", "SSCARD_MEDICAL_CONFIG",
                 "SSCARD_INSURANCE_URL", "SSCARD_READER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    card = new_card("anhui", seed=41)
    card.save(tmp_path / "card.json")
    text = (tmp_path / "card.json").read_text(encoding="utf-8")
    (tmp_path / "big-int.json").write_text(text.replace("{", '{"x": ' + "9" * 5000 + ", ", 1))
    (tmp_path / "deep.json").write_text(text.replace("{", '{"x": ' + DEEP + ", ", 1))
    (tmp_path / "deep-bare.json").write_text(DEEP)
    (tmp_path / "nan.json").write_text(text.replace("{", '{"x": NaN, ', 1))
    with open(tmp_path / "sparse.json", "wb") as f:  # 9 MB of nothing, cheap to make
        f.truncate(MAX_INPUT_BYTES + 1024 * 1024)
    (tmp_path / "trace-dict.jsonl").write_text('{"dir": "C", "name": {"a": 1}, "hex": "00A4"}\n')
    (tmp_path / "trace-list.jsonl").write_text('{"dir": "R", "hex": ["90", "00"]}\n')
    (tmp_path / "trace-deep.jsonl").write_text('{"dir": "C", "x": ' + DEEP + "}\n")
    (tmp_path / "trace-time.jsonl").write_text('{"dir": "S", "time": 12, "atr": "3B"}\n')
    (tmp_path / "fees-deep.json").write_text("[" + DEEP + "]")
    os.mkfifo(tmp_path / "fifo")
    return tmp_path


def one_error_line(*args: str, status: ExitStatus = ExitStatus.USAGE) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == status, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and " / " in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


CARD_CASES = {
    "5000-digit integer": ("big-int.json", "integer"),
    "100k-deep nesting": ("deep.json", "nested"),
    "100k-deep bare": ("deep-bare.json", "nested"),
    "NaN literal": ("nan.json", "not a number"),
    "9 MB file": ("sparse.json", "larger than"),
    "FIFO": ("fifo", "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(CARD_CASES))
@pytest.mark.parametrize("command", ["read", "sim show", "keys"])
def test_a_hostile_card_image_or_key_set(work: Path, case: str, command: str) -> None:
    name, words = CARD_CASES[case]
    bad = str(work / name)
    args = {
        "read": ["read", "--sim", bad],
        "sim show": ["sim", "show", bad],
        "keys": ["read", "--sim", str(work / "card.json"), "--keys", bad],
    }[command]
    line = one_error_line(*args)
    assert words in line, line


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("trace-dict.jsonl", "'name' has the wrong type"),
        ("trace-list.jsonl", "'hex' has the wrong type"),
        ("trace-time.jsonl", "'time' has the wrong type"),
        ("trace-deep.jsonl", "not JSON"),
        ("fifo", "not a regular file"),
    ],
)
@pytest.mark.parametrize("fmt", [[], ["--json"], ["--no-redact"]], ids=["text", "json", "raw"])
def test_a_hostile_trace(work: Path, name: str, words: str, fmt: list[str]) -> None:
    result = CliRunner().invoke(main, ["trace", "show", str(work / name), *fmt])
    assert result.exit_code == ExitStatus.USAGE and "Traceback" not in result.output
    if fmt == ["--json"]:  # the error as one JSON object on stdout
        error = json.loads(result.stdout)
        assert words in error["message_en"] and error["message_zh"], error
    else:
        assert words in result.output and " / " in result.output, result.output


@pytest.mark.parametrize(
    "value", ["inf", "-inf", "nan", "1e300", "200", "-1", "true", '"18"', "18.5", "[18]"]
)
def test_an_identity_policy_with_an_impossible_min_age(work: Path, value: str) -> None:
    text = (EXAMPLES / "identity-policy.toml").read_text(encoding="utf-8")
    text = text.replace("min_age = 18", f"min_age = {value}", 1)
    (work / "policy.toml").write_text(text, encoding="utf-8")
    line = one_error_line("identity", "check", "--scenario", "gate", "--sim",
                          str(work / "card.json"), "--policy", str(work / "policy.toml"))  # fmt: skip
    assert "min_age" in line


@pytest.mark.parametrize("value", ["inf", "nan", "1e300", "0", "true"])
def test_an_identity_policy_with_an_impossible_retention(work: Path, value: str) -> None:
    text = (EXAMPLES / "identity-policy.toml").read_text(encoding="utf-8")
    assert "retention_days" in text
    lines = [
        f"retention_days = {value}" if line.startswith("retention_days") else line
        for line in text.splitlines()
    ]
    (work / "policy.toml").write_text("\n".join(lines), encoding="utf-8")
    line = one_error_line("identity", "check", "--scenario", "hotel", "--sim",
                          str(work / "card.json"), "--policy", str(work / "policy.toml"))  # fmt: skip
    assert "retention_days" in line


def _metro(work: Path, fare_table: str) -> Path:
    text = (EXAMPLES / "validator-metro.toml").read_text(encoding="utf-8")
    text = text.replace('fare_table = "fares-shanghai-metro.csv"', f'fare_table = "{fare_table}"')
    text = text.replace('path = "validator-metro.db"', f'path = "{work / "m.db"}"')
    path = work / "metro.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("target", ["/dev/zero", "{w}/fifo", "{w}", "{w}/sparse.json"])
def test_a_fare_table_that_is_not_a_file(work: Path, target: str) -> None:
    config = _metro(work, target.replace("{w}", str(work)))
    line = one_error_line("transit", "tap", "--config", str(config), "--psam-sim",
                          str(work / "psam.json"), "--sim", str(work / "card.json"))  # fmt: skip
    assert "fare" in line or "regular file" in line or "larger than" in line, line


def test_dev_zero_fare_table_under_a_memory_limit(work: Path) -> None:
    """The 23 GB case: with 1 GB of address space the command still ends in one line."""
    config = _metro(work, "/dev/zero")
    code = textwrap.dedent(
        """
        import resource, sys
        limit = 1 << 30
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from sscard.cli import main
        main(sys.argv[1:])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "transit", "tap", "--config", str(config),
         "--psam-sim", str(work / "psam.json"), "--sim", str(work / "card.json")],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SSCARD_STATE_DIR": str(work / "state")},
    )  # fmt: skip
    assert proc.returncode == ExitStatus.USAGE, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "not a regular file" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "MemoryError" not in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["identity", "check", "--scenario", "hotel", "--sim", "{w}/card.json",
         "--policy", "/dev/zero"],
        ["identity", "check", "--scenario", "gate", "--sim", "{w}/card.json",
         "--blacklist", "/dev/zero"],
        ["identity", "qr", "verify", "SSC1:AAAA", "--trust", "/dev/zero", "--no-audit"],
        ["medical", "settle", "--items", "/dev/zero", "--yes", "--sim", "{w}/card.json",
         "--config", str(EXAMPLES / "medical.toml")],
        ["medical", "settle", "--items", str(EXAMPLES / "visit.csv"), "--yes",
         "--sim", "{w}/card.json", "--config", "/dev/zero"],
        ["medical", "settle", "--items", "{w}/fees-deep.json", "--yes",
         "--sim", "{w}/card.json", "--config", str(EXAMPLES / "medical.toml")],
        ["transit", "tap", "--config", "/dev/zero", "--psam-sim", "{w}/p.json",
         "--sim", "{w}/card.json"],
        ["read", "--sim", "/dev/zero"],
        ["trace", "show", "/dev/zero"],
    ],
    ids=["policy", "blacklist", "trust store", "fee file", "desk config", "fee file deep",
         "validator config", "card image", "trace"],
)  # fmt: skip
def test_dev_zero_anywhere(work: Path, args: list[str]) -> None:
    line = one_error_line(*(a.replace("{w}", str(work)) for a in args))
    assert "regular file" in line or "nested" in line or "JSON" in line, line


# --------------------------------------------------------------------------- the reader itself


def test_bounded_reader(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 100)
    assert read_bytes(tmp_path / "a", max_bytes=100) == b"x" * 100
    with pytest.raises(InputFileRejected, match="larger than 99"):
        read_bytes(tmp_path / "a", max_bytes=99)
    with pytest.raises(InputFileRejected, match="not a regular file"):
        read_text("/dev/zero")
    with pytest.raises(InputFileRejected):
        read_text(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_text(tmp_path / "missing")
    assert InputFileRejected().exit_status == ExitStatus.USAGE


@pytest.mark.parametrize(
    "text",
    [DEEP, "1" * 5000, "[" * 33 + "]" * 33, '{"a": NaN}', "[Infinity]", "[1e400]", "-" + "9" * 30],
)
def test_parse_json_bounds(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        parse_json(text)


def test_parse_json_accepts_ordinary_documents() -> None:
    doc = {"a": [1, 2.5, -3, "x", None, True], "b": {"c": [[[]]]}, "n": 2**64}
    assert parse_json(json.dumps(doc)) == doc
    assert parse_json("[" * 32 + "]" * 32) is not None


def test_parse_toml_bounds() -> None:
    import tomllib

    with pytest.raises(tomllib.TOMLDecodeError):
        parse_toml("a = " + "[" * 10_000 + "]" * 10_000)
    assert parse_toml("a = inf")["a"] == float("inf")  # TOML's own: callers range-check
