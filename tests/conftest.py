"""Shared pytest set-up: the private pcscd + vpcd harness lives in tests/pcsc_harness.py.

Also a session guard: a test must never leave a file in the checkout
(a key, a journal beside an example config, an outbox in the current directory).
The top level of the checkout and ``examples/`` are listed before and after the
run; anything new fails the session, naming the files. And ``host_tz``: a test run
under each of three host time zones.

PC/SC: where the host allows a private mount namespace, every PC/SC client of this
session (pyscard in-process, pcsc_scan, ``sscard`` subprocesses) is pointed at the
session's own pcscd socket before the first PC/SC call (``PCSCLITE_CSOCK_NAME``,
read once per process by libpcsclite), so the suite never touches a host pcscd or
its real readers and runs beside it (``sscard.simulators.pcscd``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sscard.simulators.insurance_platform import InsurancePlatform

pytest_plugins = ["pcsc_harness"]

ROOT = Path(__file__).resolve().parent.parent
_WATCHED = (ROOT, ROOT / "examples")
_IGNORED = {".venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "benchmarks"}


def _listing() -> set[Path]:
    return {
        path
        for folder in _WATCHED
        for path in folder.iterdir()
        if path.name not in _IGNORED and not path.name.endswith(".egg-info")
    }


_BEFORE: set[Path] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _BEFORE.update(_listing())
    # Whatever a test writes to the default state directory stays out of $HOME.
    os.environ["SSCARD_STATE_DIR"] = tempfile.mkdtemp(prefix="sscard-test-state-")
    _private_pcsc_socket()


_PCSC_DIR: list[str] = []


def _private_pcsc_socket() -> None:
    from sscard.simulators.pcscd import SOCKET_ENV, can_isolate

    if can_isolate():
        run_dir = tempfile.mkdtemp(prefix="sscard-pcscd-")
        _PCSC_DIR.append(run_dir)
        os.environ[SOCKET_ENV] = os.path.join(run_dir, "pcscd.comm")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for run_dir in _PCSC_DIR:
        shutil.rmtree(run_dir, ignore_errors=True)
    new = sorted(str(p.relative_to(ROOT)) for p in _listing() - _BEFORE)
    if new:
        print(f"\nTESTS LEFT FILES IN THE CHECKOUT (write to tmp_path instead): {new}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


#: Hosts in UTC (embedded images), in China, and with daylight saving time.
HOST_TIME_ZONES = ("UTC", "Asia/Shanghai", "America/Los_Angeles")


@pytest.fixture(params=HOST_TIME_ZONES)
def host_tz(request: pytest.FixtureRequest) -> Iterator[str]:
    """The process's local time zone for one test (``TZ`` + ``time.tzset``), restored
    after it: whatever it is, card, PSAM and journal times must be Beijing time
    (transit-purse.md §5.8)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    try:
        yield request.param
    finally:
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[InsurancePlatform]:
    """The simulated insurance platform: a real HTTP server on loopback, its SQLite
    ledger at ``tmp_path / "ledger.db"`` (a module may define its own, wider-scoped one)."""
    from sscard.simulators.insurance_platform import InsurancePlatform

    with InsurancePlatform(tmp_path / "ledger.db") as p:
        yield p
