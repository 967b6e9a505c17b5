"""``ecard issue`` (simulated issuer) and ``ecard verify`` (terminal) for e-SSC QR codes.

Attached as ``sscard sim ecard issue`` and ``sscard identity qr verify``. The payload
is the sscard profile's (reference part C, "sscard profile", e-SSC row). ``verify`` routes
the code first (multi-code fusion, reference part M profile): exit status 0 =
accepted, 1 = rejected or not an e-SSC code (outcome "relay": pass it to EcQuery).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from sscard.applets.ecard import EcardVerifier, TrustStore, read_qr_image, route_qr
from sscard.cli.common import common_options, emit, handle_errors, options
from sscard.errors import ConfigError, ExitStatus, SscardError
from sscard.services import audit, replay_cache
from sscard.simulators.ecard_issuer import (
    EcardIssuer,
    IssuerKey,
    write_qr_png,
    write_trust_store,
)
from sscard.simulators.profile import CardProfile
from sscard.sqlite import state_path

F = TypeVar("F", bound=Callable[..., Any])

#: Where a check's audit row goes (``$SSCARD_AUDIT_DB`` via audit.default_path()).
audit_db_option = click.option(
    "--audit-db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Privacy audit log (env SSCARD_AUDIT_DB).",
)


def audit_options(func: F) -> F:
    """``--audit-db``, ``--no-audit``, ``--terminal-id``: the audit row of a check.

    Shared by ``verify`` here and ``sscard identity check``, which write the same row.
    """
    func = click.option(
        "--terminal-id",
        envvar="SSCARD_TERMINAL_ID",
        default="local",
        show_default=True,
        help="Terminal ID for the audit log (env SSCARD_TERMINAL_ID).",
    )(func)
    func = click.option("--no-audit", is_flag=True, help="Do not write an audit row.")(func)
    return audit_db_option(func)


class QrNotFound(SscardError):
    """The image holds no readable QR code."""

    code = -23
    message_en = "no QR code found in the image"
    message_zh = "图片中未找到二维码"


@click.group(name="ecard")
def command() -> None:
    """Electronic social security card (e-SSC) QR codes (sscard offline profile)."""


@contextmanager
def _writing(path: str) -> Iterator[None]:
    """An OSError while writing ``path`` becomes one bilingual line (no traceback)."""
    try:
        yield
    except OSError as exc:
        name = Path(path).name
        raise ConfigError(
            f"cannot write {name}: {exc.strerror or exc}", f"无法写入 {name}"
        ) from None


@command.command()
@click.argument("card", type=click.Path(dir_okay=False, exists=True))
@click.option("--png", type=click.Path(dir_okay=False), help="Also write the QR code as a PNG.")
@click.option(
    "--issuer-key",
    type=click.Path(dir_okay=False),
    default=None,
    help=(
        "Issuer TEST key file, created 0600 if missing (env SSCARD_ECARD_ISSUER_KEY; "
        "default ecard-issuer.json in $SSCARD_STATE_DIR, ~/.local/state/sscard)."
    ),
)
@click.option(
    "--trust-out",
    type=click.Path(dir_okay=False),
    help="Write a verifier trust store holding this issuer's public key.",
)
@common_options
@handle_errors
def issue(card: str, png: str | None, issuer_key: str | None, trust_out: str | None) -> None:
    """Print a fresh e-SSC QR payload for the simulated CARD (card image JSON).

    The TEST issuer key is a private key: by default it lives in the state
    directory, never in the current directory (a checkout, a shared folder).
    """
    profile = CardProfile.load(card)  # a bad card file must not leave a new key behind
    if issuer_key is None:
        default = state_path("SSCARD_ECARD_ISSUER_KEY", "ecard-issuer.json")
        with _writing(str(default)):
            default.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        issuer_key = str(default)
    with _writing(issuer_key):
        key, created = IssuerKey.load_or_create(issuer_key)
    if created:
        click.echo(
            f"created TEST issuer key {Path(issuer_key).name} / 已创建测试签发密钥", err=True
        )
    token = EcardIssuer(key).issue_for(profile)
    payload = token.encode()
    if png:
        write_qr_png(payload, png)
    if trust_out:
        with _writing(trust_out):
            write_trust_store(trust_out, [key])
    emit(
        {
            "payload": payload,
            "issuer_key_id": key.key_id.hex().upper(),
            "issued_at": token.issued_at,
            "validity": token.validity,
            "png": png,
        },
        payload,
    )


@command.command()
@click.argument("payload", required=False)
@click.option(
    "--image", type=click.Path(dir_okay=False, exists=True), help="Read the QR code from an image."
)
@click.option(
    "--trust",
    type=click.Path(dir_okay=False, exists=True),
    envvar="SSCARD_ECARD_TRUST",
    required=True,
    help="Trust store of issuer public keys, or an issuer key file (env SSCARD_ECARD_TRUST).",
)
@click.option(
    "--replay-db",
    type=click.Path(dir_okay=False),
    default=None,
    help="Replay cache shared by all verifiers (env SSCARD_ECARD_REPLAY_DB).",
)
@click.option("--skew", type=float, default=5.0, show_default=True, help="Clock skew tolerance, s.")
@audit_options
@common_options
@handle_errors
def verify(
    payload: str | None,
    image: str | None,
    trust: str,
    replay_db: str | None,
    skew: float,
    audit_db: str | None,
    no_audit: bool,
    terminal_id: str,
) -> None:
    """Verify an e-SSC QR PAYLOAD ('-' reads stdin) or --image FILE offline."""
    if (payload is None) == (image is None):
        raise click.UsageError("give either PAYLOAD or --image / 请给出二维码内容或 --image")
    if not no_audit:
        audit.check_code("terminal_id", terminal_id)
    if image is not None:
        texts = read_qr_image(image)
        if not texts:
            raise QrNotFound()
        text = texts[0]
    else:
        # A QR text is ~160 characters; a bounded read keeps a hostile stdin harmless.
        text = sys.stdin.readline(4096) if payload == "-" else str(payload)
    with replay_cache.ReplayCache(replay_db or replay_cache.default_path()) as cache:
        verifier = EcardVerifier(TrustStore.load(trust), cache, skew=skew)
        result = route_qr(text, verifier)
    if not no_audit:
        with audit.AuditLog(audit_db or audit.default_path()) as log:
            log.record(
                terminal_id=terminal_id,
                scenario="ecard_qr",
                result=result.outcome,
                reasons=[result.reason],
                card_id_code=result.card_id_code,
            )
    info = result.to_dict(redact=options().redact)
    lines = [f"{result.outcome.upper()} [{result.reason}] {result.bilingual()}"]
    for label, key in (
        ("card identification code / 卡识别码", "card_id_code"),
        ("region / 地区", "region"),
        ("holder reference / 持卡人标识", "holder_ref"),
    ):
        if key in info:
            lines.append(f"  {label}: {info[key]}")
    emit(info, "\n".join(lines))
    if not result.accepted:  # rejected, or "relay": not an e-SSC code
        sys.exit(ExitStatus.REFUSED)
