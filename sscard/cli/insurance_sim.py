"""``sscard sim insurance serve``: run the simulated medical-insurance platform.

Loopback only unless ``--allow-remote`` (the simulator is a test double
holding test identities and a fault switch; binding it to every interface must be
a decision, and it is warned about on every start). ``--port 0`` picks a free port
and the URL is printed (and written to ``--url-file`` for scripts), with the admin
token that ``POST/DELETE /admin/faults`` need (``Authorization: Bearer TOKEN``). ``--demo-data`` loads the issue-8
demo people: an Anhui (Hefei) cardholder filed for treatment in Shanghai, one
without a filing, and a Shanghai local. See reference §M1.
"""

from __future__ import annotations

import ipaddress
import tempfile
import threading
from datetime import date
from pathlib import Path

import click

from sscard.cards.privacy import mask_ssn
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.errors import ConfigError
from sscard.files import write_private
from sscard.simulators.insurance_platform import InsurancePlatform
from sscard.simulators.profile import CardProfile

#: Test identities (not real people): certno, name, sex, birth, insured area, filed?
DEMO_PEOPLE = (
    ("340104199001010011", "测试甲", "1", "1990-01-01", "340100", True),
    ("340104199202020033", "测试乙", "2", "1992-02-02", "340100", False),
    ("310104198505050022", "测试丙", "1", "1985-05-05", "310000", False),
)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ::1 (names are not resolved:
    a name that resolves elsewhere must not pass for loopback)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_demo_data(
    platform: InsurancePlatform, treatment_area: str = "310000"
) -> list[dict[str, str]]:
    """Add the demo people; returns what was added (certno redacted by the caller)."""
    added = []
    for certno, name, sex, birth, area, filed in DEMO_PEOPLE:
        psn_no = platform.add_person(certno, name, sex, birth, area, "310", "1000.00")
        if filed:
            platform.add_filing(
                psn_no, area, treatment_area, date.today(), date(date.today().year, 12, 31)
            )
        added.append({"certno": certno, "psn_no": psn_no, "insuplc_admdvs": area,
                      "filing": "yes" if filed else "no"})  # fmt: skip
    return added


@click.command("serve")
@common_options
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; not loopback only with --allow-remote.")  # fmt: skip
@click.option("--allow-remote", is_flag=True,
              help="Allow binding a non-loopback address (warned about on every start).")  # fmt: skip
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="TCP port; 0 = pick a free one.",
)
@click.option("--db", "db_path", type=click.Path(dir_okay=False), default=None,
              help="Ledger SQLite file (default: a new temporary file).")  # fmt: skip
@click.option("--demo-data", is_flag=True, help="Load the demo insured people and filing.")
@click.option("--enrol", "enrol", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Insure the holder of this simulated card image (repeatable).")  # fmt: skip
@click.option("--filing-to", default=None, metavar="AREA",
              help="File the enrolled holders for treatment in AREA (e.g. 310000).")  # fmt: skip
@click.option("--url-file", type=click.Path(dir_okay=False), default=None,
              help="Write the service URL to this file once listening.")  # fmt: skip
@handle_errors
def command(
    host: str,
    port: int,
    db_path: str | None,
    demo_data: bool,
    enrol: tuple[str, ...],
    filing_to: str | None,
    url_file: str | None,
    allow_remote: bool,
) -> None:
    """Serve the simulated national medical-insurance platform over HTTP."""
    if not is_loopback(host):
        if not allow_remote:
            raise ConfigError(
                f"--host {host} is not a loopback address; the simulator serves test identities"
                " and a fault switch: add --allow-remote to bind it anyway",
                f"--host {host} 不是本机回环地址；模拟平台含测试身份与故障开关，"
                "如确需对外监听请加 --allow-remote",
            )
        click.echo(
            f"warning: the simulated insurance platform listens on {host}, reachable from"
            " other machines (--allow-remote) / 警告：模拟医保平台在非回环地址监听，其他机器可访问",
            err=True,
        )
    if db_path is None:
        db_path = str(Path(tempfile.mkdtemp(prefix="sscard-insurance-")) / "ledger.db")
    platform = InsurancePlatform(db_path, host=host, port=port).start()
    try:
        people = load_demo_data(platform) if demo_data else []
        for path in enrol:
            profile = CardProfile.load(path)
            psn_no = platform.enrol_card(profile, filing_to=filing_to)
            people.append({"certno": profile.ssse.ef06.ssn, "psn_no": psn_no,
                           "insuplc_admdvs": psn_no[:6], "filing": filing_to or "no"})  # fmt: skip
        if options().redact:
            people = [{**p, "certno": mask_ssn(p["certno"])} for p in people]
        if url_file:
            write_private(url_file, platform.url + "\n")
        lines = [f"insurance platform listening on {platform.url}", f"ledger: {db_path}",
                 f"admin token: {platform.admin_token} (Authorization: Bearer … for"
                 " /admin/faults)"]  # fmt: skip
        lines += [
            f"  {p['certno']} area {p['insuplc_admdvs']} filing {p['filing']}" for p in people
        ]
        emit({"url": platform.url, "ledger": db_path, "admin_token": platform.admin_token,
              "people": people}, "\n".join(lines))  # fmt: skip
        click.echo("press Ctrl-C to stop", err=True)
        threading.Event().wait()  # the server runs in its own thread; Ctrl-C ends this
    except KeyboardInterrupt:
        pass
    finally:
        platform.stop()
