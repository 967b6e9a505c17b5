"""The card operations behind the endpoints: blocking, one reader each, JSON out.

Each function runs in a worker thread while the service holds the reader's lock
(:mod:`sscard.serve.app`), so a GET CHALLENGE and the authentication that consumes
it are never interleaved with another page's request; the SSSE read itself runs in
a PC/SC transaction as well (:meth:`SsseReader.read`). They are plain functions of a
:class:`Connection`, so the benchmark calls exactly the same code in-process.

Masking: ``full=False`` (the default for every origin) masks the holder's name, SSN,
birth date and card number with :mod:`sscard.cards.privacy` through the applets' own
``to_dict(redact=...)``; the ``iReadCardBas`` string is masked the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sscard.applets.ecard import EcardVerifier, TrustStore, route_qr
from sscard.applets.identity import IdentityCheck, IdentityPolicy
from sscard.applets.keyprovider import (
    KeyProvider,
    PsamKeyProvider,
    PsamMissing,
    SoftwareKeyProvider,
)
from sscard.applets.ssse import CardRead, KeysRequired, SsseReader
from sscard.applets.unified import format_card_bas
from sscard.cards.privacy import mask_card_id, mask_card_number
from sscard.errors import ConfigError
from sscard.serve.config import ServeConfig
from sscard.services import replay_cache
from sscard.services.audit import AuditLog
from sscard.terminals.connection import Connection
from sscard.terminals.errors import TerminalError


@dataclass(frozen=True)
class Subject:
    """Who an operation was about, for the (masking) audit row; never sent anywhere."""

    name: str | None = None
    ssn: str | None = None
    card_id_code: bytes | None = None


@dataclass(frozen=True)
class Outcome:
    """The JSON answer (already masked as the origin requires) and the audit facts."""

    body: dict[str, Any]
    result: str = "ok"
    subject: Subject | None = None
    #: The audit row is already written (in the worker thread, right after the card).
    audited: bool = False


class Keys:
    """The card-key source the configuration names, opened per operation.

    ``test``: the simulator's TEST key set (never a production key); a file: a key set;
    ``psam_reader``: a PSAM in another PC/SC reader, shared by all card readers and so
    used under its own lock.
    """

    def __init__(self, config: ServeConfig) -> None:
        self._software: KeyProvider | None = None
        self._psam_reader = config.psam_reader
        self._psam_lock = threading.Lock()
        if config.keys == "test":
            from sscard.simulators.keys import default_key_set

            self._software = SoftwareKeyProvider(default_key_set())
        elif config.keys:
            from sscard.simulators.keys import KeySet

            self._software = SoftwareKeyProvider(KeySet.load(config.keys))

    @property
    def configured(self) -> bool:
        return self._software is not None or self._psam_reader is not None

    @contextmanager
    def provider(self) -> Iterator[KeyProvider | None]:
        if self._software is not None or self._psam_reader is None:
            yield self._software
            return
        from sscard.terminals.pcsc import PcscTransport

        with self._psam_lock:
            conn = Connection(PcscTransport(self._psam_reader))
            try:
                conn.connect()
            except TerminalError:
                conn.close()
                raise PsamMissing() from None
            try:
                yield PsamKeyProvider(conn)
            finally:
                conn.close()


def read_raw(conn: Connection, keys: KeyProvider | None, config: ServeConfig) -> CardRead:
    """The SSSE read (SELECT, EF05, EF06, internal authentication) in one PC/SC transaction."""
    return SsseReader(conn, keys, initial_pin=config.initial_pin).read()


def card_body(read: CardRead, config: ServeConfig, *, full: bool) -> Outcome:
    """``POST /v1/card/read``'s answer: the read and the ``iReadCardBas`` string (§C4.2).

    ``ireadcardbas`` is ``{"code", "out"}`` exactly as the DLL returns them: 0 and the
    ``|``-separated fields, or −2201 when no card keys were configured (the DLL needs
    them too). Masked unless ``full``.
    """
    if read.holder is None:
        missing = KeysRequired()
        bas: dict[str, Any] = {"code": missing.code, "out": missing.bilingual()}
    else:
        text = format_card_bas(read, device_number=config.device_number, redact=not full)
        if not full:  # the card number and card ID too, as in the card object below
            fields = text.split("|")
            fields[2], fields[3] = mask_card_number(fields[2]), mask_card_id(fields[3])
            text = "|".join(fields)
        bas = {"code": 0, "out": text}
    card = read.to_dict(redact=not full)
    if not full:
        card["issuer"]["card_id"] = mask_card_id(card["issuer"]["card_id"])
    holder = read.holder
    subject = Subject(
        holder.full_name if holder else None,
        holder.ssn if holder else None,
        read.issuer.card_id.encode(),
    )
    body = {
        "code": 0,
        "masked": not full,
        "card": card,
        "ireadcardbas": bas,
    }
    return Outcome(body, subject=subject)


def verify_pin(conn: Connection, pin: str, config: ServeConfig) -> Outcome:
    """``POST /v1/card/pin/verify``: −51 with ``tries_left``, −52 locked, −41/−42 format."""
    SsseReader(conn, initial_pin=config.initial_pin).verify_pin(pin)
    return Outcome({"code": 0, "pin": "verified"})


def change_pin(conn: Connection, old: str, new: str, config: ServeConfig) -> Outcome:
    """``POST /v1/card/pin/change``: −36 when the new PIN is the initial PIN."""
    SsseReader(conn, initial_pin=config.initial_pin).change_pin(old, new)
    return Outcome({"code": 0, "pin": "changed"})


def identity_check(
    conn: Connection,
    keys: KeyProvider | None,
    policy: IdentityPolicy,
    audit: AuditLog | None,
    config: ServeConfig,
    *,
    scenario: str,
    pin: str | None,
    full: bool,
) -> Outcome:
    """``POST /v1/identity/check``: a scenario of the policy file (its own audit row)."""
    checker = IdentityCheck(policy, audit=audit, terminal_id=config.terminal_id)
    with conn.transaction():
        result = checker.check_card(
            scenario, SsseReader(conn, keys, initial_pin=config.initial_pin), pin=pin
        )
    body = {"code": 0, "masked": not full, **result.to_dict(redact=not full)}
    return Outcome(body, result="accepted" if result.accepted else "refused")


def qr_verify(
    trust_path: Path | None, replay_path: Path | None, payload: str, *, full: bool
) -> Outcome:
    """``POST /v1/qr/verify``: the offline e-SSC check (each nonce is accepted once)."""
    if trust_path is None:
        raise ConfigError(
            "no e-SSC trust store configured (ecard_trust)",
            "未配置电子社保卡信任列表 (ecard_trust)",
        )
    trust = TrustStore.load(trust_path)
    with replay_cache.ReplayCache(replay_path or replay_cache.default_path()) as cache:
        result = route_qr(payload, EcardVerifier(trust, cache))
    info = result.to_dict(redact=not full)  # the holder reference is masked always
    if not full and "card_id_code" in info:
        info["card_id_code"] = mask_card_id(info["card_id_code"])
    subject = Subject(card_id_code=result.card_id_code)
    return Outcome({"code": 0, "masked": not full, **info}, result=result.outcome, subject=subject)
