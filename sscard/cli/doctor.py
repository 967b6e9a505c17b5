"""``sscard doctor``: check the PC/SC setup and print the fix for each problem.

Checks, in the order a newcomer hits them (reference §N1-3): pyscard
importable, pcscd installed, pcscd running, its socket usable (and not stale),
the vsmartcard-vpcd driver, readers visible.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from sscard.cli.common import common_options, emit, handle_errors
from sscard.errors import SscardError
from sscard.simulators.pcscd import (
    PCSCD_BINARY,
    SOCKET_ENV,
    SOCKET_PATH,
    VPCD_DRIVER,
    running_pcscd_pids,
    socket_live,
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok" | "warn" | "fail"
    detail: str
    fix: str | None = None


def run_checks() -> list[Check]:
    checks: list[Check] = []
    try:
        from smartcard import scard  # noqa: F401

        checks.append(Check("pyscard", "ok", "importable"))
        have_pyscard = True
    except ImportError as exc:
        have_pyscard = False
        checks.append(
            Check("pyscard", "fail", f"cannot import: {exc}",
                  "apt-get install libpcsclite-dev gcc && pip install pyscard")
        )  # fmt: skip
    if PCSCD_BINARY.exists():
        checks.append(Check("pcscd binary", "ok", str(PCSCD_BINARY)))
    else:
        checks.append(Check("pcscd binary", "fail", "not installed", "apt-get install pcscd"))
    # What matters is the daemon behind *this* process's socket: another pcscd
    # (a private one in its own mount namespace, say) serves other clients.
    path = Path(os.environ.get(SOCKET_ENV, str(SOCKET_PATH)))
    live = socket_live(path)
    pids = running_pcscd_pids()
    if live:
        checks.append(Check("pcscd running", "ok", f"serving {path} (pcscd pid "
                            f"{', '.join(map(str, pids)) or '?'})"))  # fmt: skip
    elif pids:
        checks.append(
            Check("pcscd running", "fail",
                  f"pcscd runs (pid {', '.join(map(str, pids))}) but none answers on {path}",
                  f"if {SOCKET_ENV} is set, unset it or start the pcscd it names; "
                  "else restart pcscd")
        )  # fmt: skip
    else:
        checks.append(
            Check("pcscd running", "fail", "no pcscd process",
                  "start it as root: `pcscd` (containers without systemd: "
                  "`setsid pcscd --foreground &`)")
        )  # fmt: skip
    checks.append(_socket_check(path, live))
    if VPCD_DRIVER.exists():
        checks.append(Check("vpcd driver", "ok", str(VPCD_DRIVER)))
    else:
        checks.append(
            Check("vpcd driver", "warn", "vsmartcard-vpcd not installed (only needed for "
                  "the simulator as a PC/SC reader)", "apt-get install vsmartcard-vpcd")
        )  # fmt: skip
    if have_pyscard and live:
        checks.append(_readers_check())
    return checks


def _socket_check(path: Path, running: bool) -> Check:
    if not path.exists():
        if running:
            return Check("pcscd socket", "fail", f"{path} missing although pcscd runs",
                         "restart pcscd")  # fmt: skip
        return Check("pcscd socket", "warn", f"{path} absent (pcscd not running)", "start pcscd")
    if not running:
        return Check("pcscd socket", "fail", f"stale {path} (no pcscd owns it)",
                     f"rm {path} {path.with_name('pcscd.pid')} and start pcscd")  # fmt: skip
    if not os.access(path, os.R_OK | os.W_OK):
        return Check("pcscd socket", "fail", f"no permission on {path}",
                     "run as root or give your user access (pcscd's polkit rules / socket mode)")  # fmt: skip
    return Check("pcscd socket", "ok", str(path))


def _readers_check() -> Check:
    from sscard.terminals.pcsc import list_readers

    try:
        readers = list_readers()
    except SscardError as exc:
        return Check("readers", "fail", exc.message_en, "see the checks above")
    if not readers:
        return Check(
            "readers", "warn", "pcscd sees no reader",
            "plug in a reader, or serve a simulated card: `sscard sim serve card.json` "
            "(needs vsmartcard-vpcd)",
        )  # fmt: skip
    return Check("readers", "ok", "; ".join(readers))


@click.command(name="doctor")
@common_options
@handle_errors
def command() -> None:
    """Check pyscard, pcscd, its socket, the vpcd driver and readers; print fixes."""
    checks = run_checks()
    lines = []
    for check in checks:
        lines.append(f"[{check.status:^4}] {check.name}: {check.detail}")
        if check.fix and check.status != "ok":
            lines.append(f"       fix: {check.fix}")
    emit([asdict(c) for c in checks], "\n".join(lines))
    if any(c.status == "fail" for c in checks):
        raise SystemExit(1)
