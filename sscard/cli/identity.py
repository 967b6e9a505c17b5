"""``sscard identity``: identity checks at hotels, gates and counters, QR verify, audit log.

``check --scenario hotel|gate|counter`` reads the card in the reader (``-r``) or the
simulator (``--sim card.json``, with the TEST key set for internal authentication)
and applies the scenario policy (``--policy FILE``, TOML; see
examples/identity-policy.toml); ``--qr PAYLOAD`` checks an e-SSC QR code instead
(Art. 2: physical or electronic card). ``qr verify`` is the e-SSC verifier of
``sscard.cli.ecard``. ``audit`` prints the masked audit rows. Output is masked unless
``--no-redact`` (regulation Art. 18). Exit status: 0 accepted, 1 refused, others as in sscard.errors.ExitStatus.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from sscard.applets.identity import IdentityCheck, IdentityPolicy, IdentityResult
from sscard.cli import ecard
from sscard.cli.common import common_options, emit, handle_errors, options, read_secret_line
from sscard.errors import ExitStatus
from sscard.services import audit as audit_mod
from sscard.services.lists import Blacklist, TrustList


@click.group(name="identity")
def command() -> None:
    """Identity checks with the social security card (hotel, gate, counter)."""


def _policy(path: str | None) -> IdentityPolicy:
    return IdentityPolicy.load(path) if path else IdentityPolicy()


def _key_provider(keys_path: str | None) -> Any:
    """Software keys from a key-set file, or the TEST key set for ``--sim``; else None."""
    from sscard.applets.keyprovider import SoftwareKeyProvider
    from sscard.simulators.keys import KeySet, default_key_set

    if keys_path:
        return SoftwareKeyProvider(KeySet.load(keys_path))
    if options().sim:
        return SoftwareKeyProvider(default_key_set())
    return None


def _read_pin() -> str:
    return read_secret_line()


@command.command()
@click.option(
    "--scenario",
    required=True,
    help="Scenario of the policy: hotel, gate, counter (or one the policy file adds).",
)
@click.option(
    "--policy",
    type=click.Path(dir_okay=False, exists=True),
    envvar="SSCARD_IDENTITY_POLICY",
    help="Policy file (TOML, sscard-identity-policy/1; env SSCARD_IDENTITY_POLICY).",
)
@click.option("--pin-stdin", is_flag=True, help="Read the holder's PIN from stdin (counter).")
@click.option("--blacklist", type=click.Path(dir_okay=False, exists=True), help="Blacklist file.")
@click.option(
    "--trust-list",
    type=click.Path(dir_okay=False, exists=True),
    help="Trust list file (default: the policy's regions, else the four delta provinces).",
)
@click.option(
    "--keys",
    type=click.Path(dir_okay=False, exists=True),
    help="Key-set file for card authentication (default with --sim: the TEST key set).",
)
@click.option("--qr", "qr_payload", help="Check this e-SSC QR PAYLOAD ('-' = stdin) instead.")
@click.option(
    "--ecard-trust",
    type=click.Path(dir_okay=False, exists=True),
    envvar="SSCARD_ECARD_TRUST",
    help="e-SSC issuer trust store, for --qr (env SSCARD_ECARD_TRUST).",
)
@click.option("--replay-db", type=click.Path(dir_okay=False), help="e-SSC replay cache.")
@ecard.audit_options
@common_options
@handle_errors
def check(
    scenario: str,
    policy: str | None,
    pin_stdin: bool,
    blacklist: str | None,
    trust_list: str | None,
    keys: str | None,
    qr_payload: str | None,
    ecard_trust: str | None,
    replay_db: str | None,
    audit_db: str | None,
    no_audit: bool,
    terminal_id: str,
) -> None:
    """Check the presented card (or e-SSC QR code) against a scenario policy."""
    pol = _policy(policy)
    pol.scenario(scenario)  # unknown scenario: a clear error before touching the card
    if not no_audit:
        audit_mod.check_code("terminal_id", terminal_id)
    pin = _read_pin() if pin_stdin else None
    log = None if no_audit else pol.open_audit(audit_db or audit_mod.default_path())
    try:
        checker = IdentityCheck(
            pol,
            blacklist=Blacklist.load(blacklist) if blacklist else None,
            trust=TrustList.load(trust_list) if trust_list else None,
            audit=log,
            terminal_id=terminal_id,
        )
        if qr_payload is not None:
            result = _check_qr(checker, scenario, qr_payload, ecard_trust, replay_db)
        else:
            result = _check_card(checker, scenario, keys, pin)
    finally:
        if log is not None:
            log.close()
    redact = options().redact
    emit(result.to_dict(redact=redact), result.text(redact=redact))
    if not result.accepted:
        sys.exit(ExitStatus.REFUSED)


def _check_card(
    checker: IdentityCheck, scenario: str, keys: str | None, pin: str | None
) -> IdentityResult:
    from sscard.applets.ssse import SsseReader
    from sscard.cli.connect import open_connection

    with open_connection(options()) as conn, conn.transaction():
        reader = SsseReader(conn, _key_provider(keys))
        return checker.check_card(scenario, reader, pin=pin)


def _check_qr(
    checker: IdentityCheck,
    scenario: str,
    payload: str,
    trust: str | None,
    replay_db: str | None,
) -> IdentityResult:
    from sscard.applets.ecard import EcardVerifier, TrustStore
    from sscard.services import replay_cache

    if trust is None:
        raise click.UsageError("--qr needs --ecard-trust / --qr 需要 --ecard-trust")
    # A QR text is ~160 characters; a bounded read keeps a hostile stdin harmless.
    text = sys.stdin.readline(4096) if payload == "-" else payload
    with replay_cache.ReplayCache(replay_db or replay_cache.default_path()) as cache:
        checker.verifier = EcardVerifier(TrustStore.load(trust), cache)
        return checker.check_qr(text.strip(), scenario)


qr = click.Group("qr", help="Electronic social security card (e-SSC) QR codes.")
qr.add_command(ecard.command.commands["verify"])
command.add_command(qr)


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            "use an ISO date or time, e.g. 2024-05-01T08:00 / 请使用ISO日期时间"
        ) from None


@command.command(name="audit")
@click.option("--since", help="Only rows at or after this ISO date/time (UTC if no zone).")
@click.option("--scenario", help="Only this scenario (e.g. hotel.card, gate.ecard).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@ecard.audit_db_option
@common_options
@handle_errors
def audit_command(
    since: str | None, scenario: str | None, limit: int | None, audit_db: str | None
) -> None:
    """Print the audit log (masked subjects and reason codes only)."""
    start = _parse_since(since)
    with audit_mod.AuditLog(audit_db or audit_mod.default_path(), retention_days=None) as log:
        rows = log.query(start, scenario=scenario, limit=limit)
    lines = [
        f"{r.time.isoformat(timespec='seconds')} {r.terminal_id} {r.scenario} {r.result}"
        f" {r.subject_name or '-'} {r.subject_ssn or '-'} {r.subject_card or '-'}"
        f" {','.join(r.reasons)}"
        for r in rows
    ]
    emit([r.to_dict() for r in rows], "\n".join(lines) if lines else "(no rows / 无记录)")
