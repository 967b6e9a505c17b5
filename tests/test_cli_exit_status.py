"""The one exit-status table of the CLI (sscard.errors.ExitStatus), command by command.

A script at a gate branches on these numbers, so each row is run for real: a
refused tap, a usage error, a reader that is not there, a platform that does not
answer, an unbalanced or unknown outcome, a failing local database.
"""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sscard.cli import main
from sscard.cli.common import handle_errors
from sscard.errors import EXIT_STATUS_HELP, ExitStatus
from sscard.services.insurance.errors import OutcomeUnknown
from sscard.simulators.profile import new_card

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SSCARD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # whatever a command writes by default stays out of the checkout
    for name in ("SSCARD_AUDIT_DB", "SSCARD_MEDICAL_CONFIG", "SSCARD_INSURANCE_URL"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "card.json"
    new_card("zhejiang", seed=7).save(path)
    return str(path)


def invoke(*args: str) -> int:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code


def test_help_lists_every_status() -> None:
    text = CliRunner().invoke(main, ["--help"]).output
    for status in ExitStatus:
        assert f"  {int(status)}  " in EXIT_STATUS_HELP and f"  {int(status)}  " in text


def test_done_is_0_and_click_usage_is_2(card: str) -> None:
    assert invoke("version") == ExitStatus.OK
    assert invoke("read", "--no-such-option") == ExitStatus.USAGE
    assert invoke("read", "--sim", card + ".missing") == ExitStatus.USAGE


def test_a_reader_that_is_not_there_is_3(card: str) -> None:
    pytest.importorskip("smartcard", reason="pyscard not installed (make setup installs it)")
    # No pcscd, or a pcscd without this reader: both are reader failures, never 1.
    assert invoke("read", "-r", "no reader has this name 7f3a") == ExitStatus.READER


def test_a_platform_that_does_not_answer_is_4(card: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SSCARD_INSURANCE_URL", f"http://127.0.0.1:{port}")
    status = invoke("medical", "settle", "--sim", card, "--config", str(EXAMPLES / "medical.toml"),
                    "--items", str(EXAMPLES / "visit.csv"), "--yes")  # fmt: skip
    assert status == ExitStatus.BACKEND


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (OutcomeUnknown("msgid", "2207", "timeout"), ExitStatus.UNKNOWN),
        (sqlite3.OperationalError("database is locked"), ExitStatus.SYSTEM),
        (OSError(28, "No space left on device"), ExitStatus.SYSTEM),
    ],
    ids=["outcome unknown", "database locked", "disk full"],
)
def test_errors_that_reach_the_cli_keep_their_status(exc: Exception, status: ExitStatus) -> None:
    @click.command()
    @handle_errors
    def failing() -> None:
        raise exc

    result = CliRunner().invoke(failing, [])
    assert result.exit_code == status
    assert result.stderr.startswith("error: ") and " / " in result.stderr
