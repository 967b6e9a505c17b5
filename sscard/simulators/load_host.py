"""A load host (充值主机 / HSM) simulator: checks the card's load MAC1 and issues MAC2.

Why: a load (INITIALIZE FOR LOAD + CREDIT FOR LOAD) cannot be completed by the
terminal alone; the host holding the DLK master must vouch for it
(reference §P2, §P4.2, §P4.4). The host derives the card's
DLK = Div(Div(MLK, issuer ID), ASN right 8 B) (profile "PSAM diversification"),
rebuilds the load session key from the card's random and online counter, checks
MAC1 over balance ‖ amount ‖ type ‖ terminal ID, and answers MAC2 over amount ‖
type ‖ terminal ID ‖ date-time. Afterwards it can check the card's load TAC
(profile "Load TAC input") with the DTK from MTK.

For the published vectors (§P4.5) build it with :meth:`LoadHost.with_card_keys`
(the card's DLK given directly, no diversification).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sscard.apdu.codec import bcd_datetime
from sscard.cards.layout import LayoutError
from sscard.cards.purse import LoadInitResponse
from sscard.crypto import purse as pc
from sscard.crypto.errors import CryptoError
from sscard.crypto.purse import Algorithm
from sscard.errors import SscardError
from sscard.simulators.keys import KeySet

__all__ = ["LoadAuthorization", "LoadDeclined", "LoadHost", "LoadMacInvalid"]

#: (algorithm, issuer ID, ASN right 8 B) -> (DLK, DTK)
KeyResolver = Callable[[Algorithm, bytes, bytes], tuple[bytes, bytes]]


class LoadDeclined(SscardError):
    """The load host refuses to authorise a load (bad input, unknown key)."""

    code = -14
    message_en = "load declined by the host"
    message_zh = "充值主机拒绝充值"


class LoadMacInvalid(LoadDeclined):
    """The card's MAC1 does not verify: wrong card, tampered data or wrong keys."""

    code = -9302
    message_en = "load MAC1 from the card is invalid"
    message_zh = "卡片充值MAC1校验失败"


@dataclass(frozen=True)
class LoadAuthorization:
    """What the host approved: MAC2 for CREDIT FOR LOAD and the data to check the TAC."""

    mac2: bytes
    date_time: bytes  # 7-B BCD, the value to send in 8052
    amount: int
    txn_type: int
    terminal_id: bytes
    online_counter: int  # as returned by 8050 (before the increment)
    balance_before: int  # signed: negative while the card is overdrawn
    algorithm: Algorithm
    dtk: bytes = field(repr=False)

    @property
    def credit_data(self) -> bytes:
        """The 11 data bytes of ``80 52 00 00 0B``: date-time ‖ MAC2."""
        return self.date_time + self.mac2


class LoadHost:
    """The host side of a load; one instance serves any number of cards."""

    def __init__(
        self, key_set: KeySet | None = None, *, resolver: KeyResolver | None = None
    ) -> None:
        if resolver is None:
            if key_set is None:
                raise LoadDeclined("load host needs a key set", "充值主机缺少密钥集")
            ks = key_set

            def from_masters(algo: Algorithm, issuer: bytes, asn8: bytes) -> tuple[bytes, bytes]:
                return (
                    ks.purse_card_key("MLK", issuer, asn8, algo),
                    ks.purse_card_key("MTK", issuer, asn8, algo),
                )

            resolver = from_masters
        self._resolve = resolver
        self.key_version = key_set.purse_key_version if key_set is not None else None

    def __repr__(self) -> str:
        return "LoadHost()"

    @classmethod
    def with_card_keys(cls, dlk: bytes, dtk: bytes | None = None) -> LoadHost:
        """A host for one card whose DLK (and DTK, default = DLK) are given directly."""
        return cls(resolver=lambda algo, issuer, asn8: (dlk, dtk if dtk is not None else dlk))

    def authorize(
        self,
        *,
        init_response: bytes,
        issuer_id: bytes,
        asn: bytes,
        amount: int,
        terminal_id: bytes,
        date_time: bytes | datetime,
        txn_type: int = 0x02,
        overdrawn: int = 0,
    ) -> LoadAuthorization:
        """Verify MAC1 of an INITIALIZE FOR LOAD answer (16 B, no SW) and issue MAC2.

        ``asn`` is the 10-B ASN of EF 0015 (or its right 8 B); ``txn_type`` is the
        8050 P2 (02 EP, 01 ED); ``overdrawn`` the card's GET BALANCE P1 01 when P1 00
        was 0 (reference §P5.8): the load repays it first, so the TAC's new
        balance is ``amount - overdrawn``. Raises :class:`LoadMacInvalid` or
        :class:`LoadDeclined`.
        """
        try:
            init = LoadInitResponse.decode(init_response)
        except LayoutError:
            raise LoadDeclined(
                "INITIALIZE FOR LOAD answer must be 16 bytes", "圈存初始化响应须为16字节"
            ) from None
        if self.key_version is not None and init.key_version != self.key_version:
            raise LoadDeclined(
                f"card load key version {init.key_version:02X} is unknown to the host",
                f"主机不认识卡片充值密钥版本 {init.key_version:02X}",
            )
        dt = bcd_datetime(date_time) if isinstance(date_time, datetime) else bytes(date_time)
        try:
            algo = Algorithm.from_byte(init.algorithm_id)
            dlk, dtk = self._resolve(algo, bytes(issuer_id), bytes(asn[-8:]))
            sk = pc.load_session_key(
                dlk, card_random=init.random, online_counter=init.online_counter, algorithm=algo
            )
            mac1 = pc.load_mac1(
                sk,
                balance_before=init.balance,
                amount=amount,
                txn_type=txn_type,
                terminal_id=terminal_id,
                algorithm=algo,
            )
            if not hmac.compare_digest(mac1, init.mac1):
                raise LoadMacInvalid()
            mac2 = pc.load_mac2(
                sk,
                amount=amount,
                txn_type=txn_type,
                terminal_id=terminal_id,
                date_time=dt,
                algorithm=algo,
            )
        except CryptoError as exc:
            raise LoadDeclined(exc.message_en, exc.message_zh) from None
        return LoadAuthorization(
            mac2=mac2,
            date_time=dt,
            amount=amount,
            txn_type=txn_type,
            terminal_id=bytes(terminal_id),
            online_counter=init.online_counter,
            balance_before=init.balance - overdrawn,
            algorithm=algo,
            dtk=dtk,
        )

    @staticmethod
    def verify_tac(auth: LoadAuthorization, tac: bytes) -> bool:
        """True when ``tac`` (the 8052 answer) is the card's load TAC for ``auth``."""
        expected = pc.load_tac(
            auth.dtk,
            new_balance=max(auth.balance_before + auth.amount, 0),
            online_counter=auth.online_counter,
            amount=auth.amount,
            txn_type=auth.txn_type,
            terminal_id=auth.terminal_id,
            date_time=auth.date_time,
            algorithm=auth.algorithm,
        )
        return hmac.compare_digest(expected, bytes(tac))
