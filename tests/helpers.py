"""Small helpers several test modules share: raw APDUs to a simulated card, a connection,
an insurance request journalled by a desk that dies before sending it.

Imported as ``helpers`` (tests/ is on sys.path, as for pcsc_harness). Only plumbing
lives here; every assertion about card behaviour stays in the test that makes it.
"""

from __future__ import annotations

import http.client
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pytest_mock import MockerFixture

from sscard.apdu import Response
from sscard.applets.keyprovider import SoftwareKeyProvider
from sscard.applets.medical import CardIdentity, read_identity
from sscard.services.insurance import InsuranceClient
from sscard.services.insurance.models import Request
from sscard.simulators.base import SimulatedCard
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import CardProfile
from sscard.terminals import Connection, SimulatorTransport


def _raw(apdu: str | bytes) -> bytes:
    return bytes.fromhex(apdu.replace(" ", "")) if isinstance(apdu, str) else apdu


def run(card: SimulatedCard, apdu: str | bytes) -> tuple[bytes, int]:
    """Send one APDU (hex, spaces allowed, or bytes); return (data, SW as an int)."""
    answer = card.execute(_raw(apdu))
    assert len(answer) >= 2
    return answer[:-2], int.from_bytes(answer[-2:], "big")


def ok(card: SimulatedCard, apdu: str | bytes) -> bytes:
    """Send one APDU that must answer 9000; return its data."""
    data, sw = run(card, apdu)
    assert sw == 0x9000, f"{sw:04X}"
    return data


def tx(card: SimulatedCard, apdu: str | bytes) -> Response:
    """Send one APDU; return the parsed response."""
    return Response.parse(card.execute(_raw(apdu)))


def connect(card: object, **kwargs: Any) -> Connection:
    """A connected :class:`Connection` to ``card`` in an in-process simulator slot."""
    return Connection(SimulatorTransport(card), **kwargs).connect()  # type: ignore[arg-type]


class ProcessKilled(BaseException):
    """Stands for the process being killed at that point: not an Exception, so nothing
    on the way up handles it (as nothing runs after a SIGKILL)."""


def journal_and_die(client: InsuranceClient, request: Request[Any], mocker: MockerFixture) -> str:
    """``client.send(request)`` with the process killed as it opens the connection.

    What a desk killed between the outbox commit and the first byte leaves: the row
    is committed ``pending``, nothing reached the platform. Returns its msgid. (The
    automatic sign-in before a first request is made first, for real.)
    """
    if not client.sign_no:
        client.sign_in()
    connect = mocker.patch.object(http.client.HTTPConnection, "connect", side_effect=ProcessKilled)
    try:
        with pytest.raises(ProcessKilled):
            client.send(request)
    finally:
        mocker.stop(connect)
    msgid = client.outbox.last_msgid()
    assert msgid is not None and client.outbox.get(msgid).infno == request.infno
    return msgid


def read_card(profile: CardProfile, pin: str | None = None) -> CardIdentity:
    """A simulated card's identity as the front desk reads it (SSSE, TEST keys)."""
    with Connection(SimulatorTransport(build_card(profile))) as conn:
        return read_identity(conn, SoftwareKeyProvider(default_key_set()), pin=pin)


#: Ctrl-C must reach a child even when pytest itself runs with SIGINT ignored (a
#: background job without job control): an ignored signal is inherited across exec.
SIGINT_DEFAULT = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "


@dataclass
class Served:
    """A ``sim insurance serve`` child: its URL while it runs; output once stopped."""

    url: str = ""
    returncode: int | None = None
    out: Any = ""
    err: Any = ""


@contextmanager
def insurance_platform_process(
    args: list[str], url_file: Path, *, text: bool = True
) -> Iterator[Served]:
    """``sscard sim insurance serve ARGS --url-file URL_FILE`` in its own process, as an
    operator runs it; stopped with Ctrl-C on exit, its output and status then in the
    :class:`Served`. Waits up to 20 s for the URL file to hold the URL."""
    argv = [*args, "--url-file", str(url_file)]
    code = SIGINT_DEFAULT + f"from sscard.cli.insurance_sim import command; command({argv!r})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=text
    )
    served = Served()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if url_file.exists() and (url := url_file.read_text().strip()):
                served.url = url
                break
            time.sleep(0.05)
        yield served
    finally:
        proc.send_signal(signal.SIGINT)
        served.out, served.err = proc.communicate(timeout=10)
        served.returncode = proc.returncode
