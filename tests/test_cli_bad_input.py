"""Bad input on the command line: one bilingual ``error:`` line, exit 1, no traceback.

Each case feeds the CLI a file or option it cannot use (bytes that are not UTF-8, a
path it cannot write, a port in use, an absurd amount) and checks the one-line answer.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from sscard.cli import main
from sscard.errors import ExitStatus
from sscard.simulators.profile import new_card

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOT_UTF8 = b"\xff\xfe\x00not utf-8"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    for name in ("SSCARD_AUDIT_DB", "SSCARD_IDENTITY_POLICY", "SSCARD_MEDICAL_CONFIG",
                 "SSCARD_INSURANCE_URL", "SSCARD_READER"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    new_card("anhui", seed=41).save(tmp_path / "card.json")
    (tmp_path / "binary").write_bytes(NOT_UTF8)
    return tmp_path


def one_error_line(*args: str, status: ExitStatus = ExitStatus.USAGE) -> str:
    """Run ``sscard ARGS``: it must fail with ``status`` and one ``error: en / zh`` line.

    (Other stderr lines may precede it, e.g. ``created TEST issuer key``.)
    """
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == status, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and " / " in lines[0], result.stderr
    assert "Traceback" not in result.output
    return lines[0]


NOT_UTF8_CASES = [
    ["read", "--sim", "{w}/binary"],
    ["sim", "show", "{w}/binary"],
    ["read", "--sim", "{w}/card.json", "--keys", "{w}/binary"],
    ["trace", "show", "{w}/binary"],
    ["identity", "check", "--scenario", "hotel", "--sim", "{w}/card.json",
     "--policy", "{w}/binary"],
    ["medical", "settle", "--items", str(EXAMPLES / "visit.csv"), "--yes",
     "--sim", "{w}/card.json", "--config", "{w}/binary"],
]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    NOT_UTF8_CASES,
    ids=["card image", "sim show", "key set", "trace", "identity policy", "medical config"],
)
def test_a_file_that_is_not_utf8_text(work: Path, args: list[str]) -> None:
    line = one_error_line(*(a.replace("{w}", str(work)) for a in args))
    assert "UTF-8" in line or "TOML" in line


def test_a_card_image_without_schema_says_so(work: Path) -> None:
    (work / "empty.json").write_text("{}", encoding="utf-8")
    line = one_error_line("read", "--sim", str(work / "empty.json"))
    assert "no schema" in line and "NoneType" not in line


UNWRITABLE_CASES = [
    ["read", "--sim", "{w}/card.json", "--trace", "{w}/no/such/dir/trace.jsonl"],
    ["sim", "new", "--province", "anhui", "-o", "{w}/no/such/dir/card.json"],
    ["sim", "ecard", "issue", "{w}/card.json", "--issuer-key", "{w}/key.json",
     "--trust-out", "{w}/no/such/dir/trust.json"],
]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    UNWRITABLE_CASES,
    ids=["trace", "sim new", "ecard trust store"],
)
def test_a_path_that_cannot_be_written(work: Path, args: list[str]) -> None:
    line = one_error_line(*(a.replace("{w}", str(work)) for a in args))
    assert "cannot write" in line and "无法写入" in line
    assert not (work / "no").exists()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_insurance_platform_on_a_port_in_use(work: Path, busy_port: int) -> None:
    line = one_error_line("sim", "insurance", "serve", "--db", str(work / "ledger.db"),
                          "--port", str(busy_port))  # fmt: skip
    assert f"127.0.0.1:{busy_port}" in line


def test_insurance_platform_on_a_file_that_is_not_a_ledger(work: Path) -> None:
    line = one_error_line("sim", "insurance", "serve", "--db", str(work / "binary"))
    assert "ledger" in line


def test_a_load_too_large_for_the_purse_command_is_not_called_negative(work: Path) -> None:
    line = one_error_line(
        "transit", "load", "99999999", "--sim", str(work / "card.json"), status=ExitStatus.REFUSED
    )
    assert "too large" in line and "positive" not in line
