"""The T-Union electronic purse applet (ADF ``A000000632010105``) of the simulated card.

Why a module of its own: the purse is the only part of the card whose state changes
carry money, so its rules live in one place that can be checked against
reference part P line by line:

* selection (§P1.2): FCI ``6F (84 AID, A5 (9F08 version, 9F0C EF 0015))``; a PPSE
  directory entry with label ``MOT_T_EP`` (:func:`build_ppse_ddf`);
* files (§P1.3), served by the card OS's READ BINARY / READ RECORD: EF 0015/0016/0017
  (SFI 15/16/17), EF 0018 (cyclic, 23-B records, newest first), EF 001A (composite
  records; record number = record ID), EF 0019 (the same composite records of a local,
  non-interoperable card, §P5.4), EF 001E (cyclic, 48-B trip records);
* commands (§P2): GET BALANCE, INITIALIZE FOR PURCHASE / CAPP PURCHASE / LOAD (P2 01
  ED or 02 EP), UPDATE CAPP DATA CACHE, DEBIT FOR (CAPP) PURCHASE, CREDIT FOR LOAD,
  GET TRANSACTION PROVE;
* cryptography (§P4) from :mod:`sscard.crypto.purse`: 3DES (algorithm ID 00) and SM4
  (04, sscard profile). Card keys DPK/DLK/DTK are diversified from the key set's
  MPK/MLK/MTK, issuer ID first, then ASN (profile "PSAM diversification").

**All or nothing.** 8054 and 8052 compute every new value first (balance, counter,
EF 0018, and for 8054 the cached EF 001A/0019/001E records and the transaction proof)
and install them in one ``cos.commit``: a tear before it leaves the card untouched,
a tear after it leaves the whole transaction on the card with the answer lost. Le is
judged before either runs (:meth:`PurseApplet.answer_size`): a wrong Le answers
``6Cxx`` with nothing changed, so a terminal never sees an error for a committed debit.

sscard profile choices implemented (reference part P "sscard profile"): GET BALANCE
P1 00-03, where P1 01 is the **amount overdrawn** as Metrodroid and CardBal read it
(§P5.8: their public code overrides the profile row's "01 = overdraft limit"); maximum balance (INITIALIZE FOR LOAD above it: ``6985``); the composite
cache is not MAC-covered, is committed with a successful 8054 and discarded when
8054 fails or the card is torn; 805A carries counter N + 1.

Project choices where the reference is silent (documented here, not standards):

* overdraft: the purse holds one signed value; P1 00 balance = max(value, 0), P1 02
  overdraft used = max(-value, 0); a purchase may take the value down to minus the
  overdraft limit, else ``9401`` (checked at 8050, as PBOC cards do, and again at 8054);
* an EF 0018 record carries the counter value the transaction used (the one 8050
  returned, before the increment); loads log the online counter, purchases the offline;
* GET TRANSACTION PROVE serves the last purchase only (any other counter or type:
  ``9406``); it survives a power loss and a reload of the card image
  (``PurseProfile.last_proof``);
* 80DC records must decode with the :mod:`sscard.cards.purse` layouts and re-encode
  to the same bytes (else ``6A80``), so a terminal writing a malformed record hears
  about it and the card image stays loadable; a 1A/19 record's ID byte must equal P1;
* both composite files exist on every card; which one a terminal uses is its choice
  (by EF 0017's interoperability flag, see ``applets.transit.purse.composite_sfi``);
* the date-time of 8054/8052 must be a valid BCD date-time (else ``6A80``, nothing
  changed);
* the purchase/load session (8050 ... 8054/8052) ends with its completing command
  (success or not), a new 8050, reselection of the ADF, reset or power loss; other
  commands (reads, GET BALANCE, 805A) leave it open; no MAC-failure lock counter.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from sscard.apdu import Command, errors
from sscard.apdu.catalog import CLA_PROPRIETARY, Ins
from sscard.apdu.codec import bcd_datetime
from sscard.cards.ids import PPSE_NAME, SFI_LOCAL_COMPOSITE, TUNION_EP_AID, TUNION_EP_LABEL
from sscard.cards.layout import Layout, LayoutError
from sscard.cards.purse import (
    BalanceResponse,
    CompositeRecord,
    CreditData,
    CreditResponse,
    DebitData,
    DebitResponse,
    Ef0015,
    EpFci,
    InitData,
    LoadInitResponse,
    PpseEntry,
    PpseFci,
    ProveData,
    ProveResponse,
    PurchaseInitResponse,
    TripRecord,
    TxnRecord,
)
from sscard.crypto import purse as pc
from sscard.crypto.purse import Algorithm
from sscard.simulators.cos import (
    FREE,
    NEVER,
    Applet,
    CardOS,
    DedicatedFile,
    RecordFile,
    RecordStructure,
    TransparentFile,
    decode_body,
)
from sscard.simulators.keys import KeySet
from sscard.simulators.profile import PurseProfile, PurseProof

__all__ = [
    "AID",
    "PurseApplet",
    "PurseKey",
    "PurseKeys",
    "PurseState",
    "TransactionProof",
    "build_ppse_ddf",
    "build_purse_adf",
    "purse_card",
    "purse_keys",
    "vector_keys",
]

AID = TUNION_EP_AID
EP_ADF_FID = 0x1001
#: 9F08 in the SELECT answer, as in the §P1.2 sample (not EF 0015 byte 9, which differs there).
APP_VERSION = 0x02

SFI_EF15, SFI_EF16, SFI_EF17 = 0x15, 0x16, 0x17
SFI_LOG, SFI_COMPOSITE, SFI_TRIP = 0x18, 0x1A, 0x1E
LOG_RECORD_SIZE, TRIP_RECORD_SIZE = TxnRecord.size(), TripRecord.size()  # 23, 48
COMPOSITE_RECORD_SIZE = CompositeRecord.size()  # 128
LOG_RECORDS, TRIP_RECORDS = 10, 30
#: EF 001A (and 0019) records pre-allocated by the issuer: metro 01 (profile), bus 02 (§P5.4).
COMPOSITE_IDS = (0x01, 0x02)
#: The composite files: interoperable 1A, local 19 (§P1.3, §P5.4), same record structure.
COMPOSITE_SFIS = (SFI_COMPOSITE, SFI_LOCAL_COMPOSITE)

# Transaction types (reference §P5.1).
TYPE_ED_LOAD, TYPE_EP_LOAD, TYPE_ED_PURCHASE, TYPE_EP_PURCHASE, TYPE_CAPP = 1, 2, 5, 6, 9
_INIT_TYPES = {
    (0x00, 0x01): TYPE_ED_LOAD,
    (0x00, 0x02): TYPE_EP_LOAD,
    (0x01, 0x01): TYPE_ED_PURCHASE,
    (0x01, 0x02): TYPE_EP_PURCHASE,
    (0x03, 0x02): TYPE_CAPP,
}

#: The key of the published vectors (reference §P4.5: DLK = DPK).
VECTOR_KEY = bytes.fromhex("11223344556677888877665544332211")


# =========================================================================== keys


@dataclass(frozen=True)
class PurseKey:
    """One card key and the key version / algorithm ID the card reports in 8050."""

    version: int
    algorithm: Algorithm
    value: bytes = field(repr=False)


@dataclass(frozen=True)
class PurseKeys:
    """DPK / DLK / DTK by key index (the first data byte of 8050).

    A purchase with key index *i* uses ``purchase[i]`` and ``tac[i]``; a load uses
    ``load[i]`` and ``tac[i]``. The repr never shows key bytes.
    """

    purchase: Mapping[int, PurseKey] = field(repr=False)
    load: Mapping[int, PurseKey] = field(repr=False)
    tac: Mapping[int, PurseKey] = field(repr=False)


def purse_keys(key_set: KeySet, profile: PurseProfile) -> PurseKeys:
    """The card's keys from the key set's masters (reference §P4.1, profile
    "PSAM diversification"): Div(Div(MPK/MLK/MTK, EF0015[0..7]), EF0015[12..19]).

    One key index (``profile.key_index``) and one version (``profile.key_version``)
    for purchase and load, algorithm ``profile.algorithm_id``. A profile with a true
    ``vector_keys`` flag gets :func:`vector_keys` instead (published-vector tests).
    """
    if profile.vector_keys:
        return vector_keys(profile.key_index)
    issuer, asn8 = profile.ef0015.issuer_id, profile.ef0015.asn_right8
    algo = Algorithm.from_byte(profile.algorithm_id)

    def key(master: str) -> dict[int, PurseKey]:
        value = key_set.purse_card_key(master, issuer, asn8, algo)
        return {profile.key_index: PurseKey(profile.key_version, algo, value)}

    return PurseKeys(purchase=key("MPK"), load=key("MLK"), tac=key("MTK"))


def vector_keys(key_index: int = 1) -> PurseKeys:
    """DPK = DLK = DTK = the §P4.5 vector key; purchase version 01, load version 02, 3DES.

    The ``vector_keys`` option: bypasses diversification so the simulated card
    reproduces the published MAC1 (load) and MAC2 (purchase) byte for byte.
    """
    return PurseKeys(
        purchase={key_index: PurseKey(1, Algorithm.TDES, VECTOR_KEY)},
        load={key_index: PurseKey(2, Algorithm.TDES, VECTOR_KEY)},
        tac={key_index: PurseKey(1, Algorithm.TDES, VECTOR_KEY)},
    )


# =========================================================================== state


@dataclass(frozen=True)
class TransactionProof:
    """What GET TRANSACTION PROVE answers for the last purchase (§P2, §P5.7)."""

    counter: int  # the offline counter after the debit (N + 1)
    txn_type: int
    mac2: bytes = field(repr=False)
    tac: bytes = field(repr=False)


@dataclass(frozen=True)
class PurseState:
    """The purse's persistent values outside the record files (PBOC "EF 0002").

    ``value`` is signed: negative while the overdraft is in use.
    """

    value: int = 0
    overdraft_limit: int = 0
    online_counter: int = 0
    offline_counter: int = 0
    max_balance: int = 100_000
    proof: TransactionProof | None = None

    @property
    def balance(self) -> int:
        """GET BALANCE P1 00: the balance used for purchase and load."""
        return max(self.value, 0)

    @property
    def overdraft_used(self) -> int:
        return max(-self.value, 0)

    @property
    def usable(self) -> int:
        """GET BALANCE P1 03: the value plus the overdraft limit."""
        return self.value + self.overdraft_limit


@dataclass(frozen=True)
class _Session:
    """Volatile context between 8050 and 8054 / 8052."""

    load: bool
    txn_type: int
    key: PurseKey
    tac_key: PurseKey
    amount: int
    terminal_id: bytes
    counter: int  # as reported by 8050, before the increment
    random: bytes


@dataclass(frozen=True)
class _CacheEntry:
    """One accepted 80DC: EF 001A/0019 record ``record_id`` or a new EF 001E record."""

    sfi: int
    record_id: int
    data: bytes


L = TypeVar("L", bound=Layout)


def _roundtrip(layout: type[L], data: bytes) -> L | None:
    """``data`` decoded with ``layout`` when it encodes back to the same bytes, else None."""
    try:
        value = layout.decode(data)
    except LayoutError:
        return None
    return value if value.encode() == data else None


def _empty_composite(record_id: int) -> bytes:
    """A pre-allocated, never written composite record: ``27 id 7D`` then zeros."""
    return CompositeRecord(record_id=record_id, valid=0, mode=0).encode()


# =========================================================================== applet


class PurseApplet(Applet):
    """The purse logic attached to the EP ADF; the files live in the ADF itself.

    ``state`` holds balance, counters, limits and the last transaction proof; the
    ADF's record files hold EF 0018/001A/001E. Both change only in ``cos.commit``.
    """

    def __init__(self, keys: PurseKeys, state: PurseState | None = None) -> None:
        self.keys = keys
        self.state = state or PurseState()
        self._session: _Session | None = None
        self._cache: list[_CacheEntry] = []
        self.instructions = {
            (CLA_PROPRIETARY, Ins.GET_BALANCE): self.get_balance,
            (CLA_PROPRIETARY, Ins.INITIALIZE): self.initialize,
            (CLA_PROPRIETARY, Ins.UPDATE_CAPP_DATA_CACHE): self.update_cache,
            (CLA_PROPRIETARY, Ins.DEBIT_FOR_PURCHASE): self.debit,
            (CLA_PROPRIETARY, Ins.CREDIT_FOR_LOAD): self.credit,
            (CLA_PROPRIETARY, Ins.GET_TRANSACTION_PROVE): self.prove,
        }

    def __repr__(self) -> str:
        return f"PurseApplet(aid={AID.hex().upper()})"

    def answer_size(self, cmd: Command) -> int | None:
        """8054 TAC ‖ MAC2 (8 B), 8052 TAC (4 B), 8050 (16 B load, 15 B purchase): Le is
        judged before the debit, the load or the new session (card_os.py)."""
        if cmd.cla != 0x80:
            return None
        if cmd.ins == 0x54:
            return DebitResponse.size()
        if cmd.ins == 0x52:
            return CreditResponse.size()
        if cmd.ins == 0x50:
            return (LoadInitResponse if cmd.p1 == 0x00 else PurchaseInitResponse).size()
        return None

    # -- Applet hooks -----------------------------------------------------------------

    def select_response(self, cos: CardOS, df: DedicatedFile) -> bytes:
        """``6F (84 AID, A5 (9F08 01 ver, 9F0C 1E <EF 0015>))`` (§P1.2), the shared EpFci."""
        ef15 = Ef0015.decode(_binary(df, SFI_EF15))
        return EpFci(ef0015=ef15, app_version=APP_VERSION, aid=AID).encode()

    def on_select(self, cos: CardOS, df: DedicatedFile) -> None:
        self.reset()

    def reset(self) -> None:
        """Power loss, reset, tear or reselection: the session and the 80DC cache go."""
        self._session = None
        self._cache = []

    # -- GET BALANCE ------------------------------------------------------------------

    def get_balance(self, cos: CardOS, cmd: Command) -> bytes:
        """``80 5C P1 P2 04``; P2 01 ED / 02 EP; P1 00 balance, 01 amount overdrawn,
        02 overdraft used (the same value), 03 usable balance.

        P1 01 follows reference §P5.8: Metrodroid (``TUnionTransitData``) and
        CardBal show ``-(P1 01)`` when P1 00 is 0, so an overdrawn card must answer the
        amount overdrawn there, not the limit (the limit is in the 8050 answer)."""
        st = self.state
        values = {0: st.balance, 1: st.overdraft_used, 2: st.overdraft_used, 3: st.usable}
        if cmd.p2 not in (0x01, 0x02) or cmd.p1 not in values:
            raise errors.WrongParameters()
        if cmd.data:
            raise errors.WrongLength()
        return BalanceResponse(value=values[cmd.p1]).encode()

    # -- 8050 -------------------------------------------------------------------------

    def initialize(self, cos: CardOS, cmd: Command) -> bytes:
        """INITIALIZE FOR LOAD (P1 00) / PURCHASE (01) / CAPP PURCHASE (03), §P2.

        Data: key index 1 ‖ amount 4 ‖ terminal ID 6. Purchase answer (15 B): balance,
        offline counter, overdraft limit, key version, algorithm ID, random. Load answer
        (16 B): balance, online counter, key version, algorithm ID, random, MAC1.
        """
        self.reset()
        txn_type = _INIT_TYPES.get((cmd.p1, cmd.p2))
        if txn_type is None:
            raise errors.WrongParameters()
        body = decode_body(InitData, cmd)
        amount, terminal_id = body.amount, body.terminal_id
        load = cmd.p1 == 0x00
        key = (self.keys.load if load else self.keys.purchase).get(body.key_index)
        tac_key = self.keys.tac.get(body.key_index)
        if key is None or tac_key is None:
            raise errors.KeyIndexNotSupported()
        st = self.state
        if load:
            if st.value + amount > st.max_balance:
                raise errors.ConditionsNotSatisfied()  # profile "Maximum balance"
            counter = st.online_counter
        else:
            if st.value - amount < -st.overdraft_limit:
                raise errors.InsufficientBalance()
            counter = st.offline_counter
        rnd = bytes(cos.rng(4))
        answer: Layout
        if load:
            sk = pc.load_session_key(
                key.value, card_random=rnd, online_counter=counter, algorithm=key.algorithm
            )
            mac1 = pc.load_mac1(
                sk,
                balance_before=st.balance,
                amount=amount,
                txn_type=txn_type,
                terminal_id=terminal_id,
                algorithm=key.algorithm,
            )
            answer = LoadInitResponse(
                balance=st.balance, online_counter=counter, key_version=key.version,
                algorithm_id=key.algorithm, random=rnd, mac1=mac1,
            )  # fmt: skip
        else:
            answer = PurchaseInitResponse(
                balance=st.balance, offline_counter=counter, overdraft_limit=st.overdraft_limit,
                key_version=key.version, algorithm_id=key.algorithm, random=rnd,
            )  # fmt: skip
        self._session = _Session(load, txn_type, key, tac_key, amount, terminal_id, counter, rnd)
        return answer.encode()

    # -- 80DC -------------------------------------------------------------------------

    def update_cache(self, cos: CardOS, cmd: Command) -> bytes:
        """UPDATE CAPP DATA CACHE ``80 DC P1 SFI<<3 Lc record`` (§P2, §P5.3, §P5.4).

        Only inside a composite purchase (else ``6901``). The record is cached; it
        reaches EF 001A/0019/001E only with a successful 8054 (profile "Composite cache
        and MAC"). SFI 1A or 19 (P2 ``D0``/``C8``): P1 = record ID of a pre-allocated
        record; SFI 1E: appended.
        """
        s = self._session
        if s is None or s.txn_type != TYPE_CAPP:
            raise errors.InvalidState()
        if cmd.p2 & 0x07:
            raise errors.WrongParameters()
        sfi, rid, data = cmd.p2 >> 3, cmd.p1, bytes(cmd.data)
        if sfi == SFI_TRIP:
            if len(data) != TRIP_RECORD_SIZE:
                raise errors.WrongLength()
            if _roundtrip(TripRecord, data) is None:
                raise errors.WrongData()
        elif sfi in COMPOSITE_SFIS:
            if len(data) != COMPOSITE_RECORD_SIZE:
                raise errors.WrongLength()
            ef = _records(cos.current_df, sfi)
            if not 1 <= rid <= len(ef.records):
                raise errors.RecordNotFound()
            record = _roundtrip(CompositeRecord, data)
            if record is None or record.record_id != rid:
                raise errors.WrongData()
        else:
            raise errors.FileNotFound()
        self._cache.append(_CacheEntry(sfi, rid, data))
        return b""

    # -- 8054 -------------------------------------------------------------------------

    def debit(self, cos: CardOS, cmd: Command) -> bytes:
        """DEBIT FOR (CAPP) PURCHASE ``80 54 01 00 0F seq4 date4 time3 MAC1`` -> TAC ‖ MAC2.

        MAC1 wrong: ``9302``, nothing changed, cache dropped. Otherwise one commit:
        value - amount, offline counter + 1, EF 0018 record, cached 1A/19/1E records,
        the proof for 805A.
        """
        s, cache = self._session, self._cache
        self.reset()  # whatever happens, this command ends the session
        if s is None or s.load:
            raise errors.InvalidState()
        if (cmd.p1, cmd.p2) != (0x01, 0x00):
            raise errors.WrongParameters()
        body = decode_body(DebitData, cmd)
        seq, date_time = body.terminal_seq, bcd_datetime(body.time)
        algo = s.key.algorithm
        sk = pc.purchase_session_key(
            s.key.value,
            card_random=s.random,
            offline_counter=s.counter,
            terminal_seq=seq,
            algorithm=algo,
        )
        mac1 = pc.purchase_mac1(
            sk,
            amount=s.amount,
            txn_type=s.txn_type,
            terminal_id=s.terminal_id,
            date_time=date_time,
            algorithm=algo,
        )
        if not hmac.compare_digest(mac1, body.mac1):
            raise errors.MacInvalid()
        st = self.state
        if st.value - s.amount < -st.overdraft_limit:
            raise errors.InsufficientBalance()
        mac2 = pc.purchase_mac2(sk, amount=s.amount, algorithm=algo)
        tac = pc.purchase_tac(
            s.tac_key.value,
            amount=s.amount,
            txn_type=s.txn_type,
            terminal_id=s.terminal_id,
            terminal_seq=seq,
            date_time=date_time,
            algorithm=s.tac_key.algorithm,
        )
        counter = (s.counter + 1) & 0xFFFF
        new_state = replace(
            st,
            value=st.value - s.amount,
            offline_counter=counter,
            proof=TransactionProof(counter, s.txn_type, mac2, tac),
        )
        df = cos.current_df
        log_ef, trip_ef = _records(df, SFI_LOG), _records(df, SFI_TRIP)
        comp_efs = {sfi: _records(df, sfi) for sfi in COMPOSITE_SFIS}
        log = _pushed(log_ef, _log_record(s, st.overdraft_limit, body.time))
        trips = list(trip_ef.records)
        composite = {sfi: list(ef.records) for sfi, ef in comp_efs.items()}
        for entry in cache:
            if entry.sfi == SFI_TRIP:
                trips = _pushed(trip_ef, entry.data, trips)
            else:
                composite[entry.sfi][entry.record_id - 1] = entry.data

        def apply() -> None:
            self.state = new_state
            log_ef.records = log
            trip_ef.records = trips
            for sfi, ef in comp_efs.items():
                ef.records = composite[sfi]

        cos.commit(apply)
        return DebitResponse(tac=tac, mac2=mac2).encode()

    # -- 8052 -------------------------------------------------------------------------

    def credit(self, cos: CardOS, cmd: Command) -> bytes:
        """CREDIT FOR LOAD ``80 52 00 00 0B date4 time3 MAC2`` -> TAC (§P2, §P4.4).

        MAC2 (from the load host) wrong: ``9302``, nothing changed. Otherwise one
        commit: value + amount, online counter + 1, EF 0018 record.
        """
        s = self._session
        self.reset()
        if s is None or not s.load:
            raise errors.InvalidState()
        if (cmd.p1, cmd.p2) != (0x00, 0x00):
            raise errors.WrongParameters()
        body = decode_body(CreditData, cmd)
        date_time = bcd_datetime(body.time)
        algo = s.key.algorithm
        sk = pc.load_session_key(
            s.key.value, card_random=s.random, online_counter=s.counter, algorithm=algo
        )
        mac2 = pc.load_mac2(
            sk,
            amount=s.amount,
            txn_type=s.txn_type,
            terminal_id=s.terminal_id,
            date_time=date_time,
            algorithm=algo,
        )
        if not hmac.compare_digest(mac2, body.mac2):
            raise errors.MacInvalid()
        st = self.state
        if st.value + s.amount > st.max_balance:
            raise errors.ConditionsNotSatisfied()
        new_state = replace(st, value=st.value + s.amount, online_counter=(s.counter + 1) & 0xFFFF)
        tac = pc.load_tac(
            s.tac_key.value,
            new_balance=new_state.balance,
            online_counter=s.counter,
            amount=s.amount,
            txn_type=s.txn_type,
            terminal_id=s.terminal_id,
            date_time=date_time,
            algorithm=s.tac_key.algorithm,
        )
        log_ef = _records(cos.current_df, SFI_LOG)
        log = _pushed(log_ef, _log_record(s, st.overdraft_limit, body.time))

        def apply() -> None:
            self.state = new_state
            log_ef.records = log

        cos.commit(apply)
        return CreditResponse(tac=tac).encode()

    # -- 805A -------------------------------------------------------------------------

    def prove(self, cos: CardOS, cmd: Command) -> bytes:
        """GET TRANSACTION PROVE ``80 5A 00 type 02 counter`` -> MAC2 ‖ TAC (§P2, §P5.7).

        ``counter`` is N + 1 (profile "Tearing recovery counter"): the offline counter
        after the debit. No such purchase on the card: ``9406``.
        """
        if cmd.p1 != 0x00:
            raise errors.WrongParameters()
        counter = decode_body(ProveData, cmd).counter
        proof = self.state.proof
        if proof is None or proof.counter != counter or proof.txn_type != cmd.p2:
            raise errors.MacUnavailable()
        return ProveResponse(mac2=proof.mac2, tac=proof.tac).encode()

    # -- image ------------------------------------------------------------------------

    def export(self, df: DedicatedFile, profile: PurseProfile) -> PurseProfile:
        """``profile`` with this card's current balance, counters and records (for saving).

        Composite records never written (still the empty pre-allocated form) are left out.
        An overdraft in use is kept in ``overdraft_used`` (the balance is then 0); the
        last purchase proof in ``last_proof``.
        """
        st = self.state
        composite, local = (_written(_records(df, sfi)) for sfi in COMPOSITE_SFIS)
        changes: dict[str, object] = {
            "balance": st.balance,
            "online_counter": st.online_counter,
            "offline_counter": st.offline_counter,
            "overdraft_limit": st.overdraft_limit,
            "max_balance": st.max_balance,
            "blocked": df.blocked,
            "txn_records": [TxnRecord.decode(r) for r in _records(df, SFI_LOG).records],
            "trip_records": [TripRecord.decode(r) for r in _records(df, SFI_TRIP).records],
            "composite_records": composite,
            "local_composite_records": local,
        }
        changes["overdraft_used"] = st.overdraft_used
        p = st.proof
        changes["last_proof"] = (
            None if p is None else PurseProof(p.counter, p.txn_type, p.mac2, p.tac)
        )
        return replace(profile, **changes)  # type: ignore[arg-type]


# =========================================================================== helpers


def _binary(df: DedicatedFile, sfi: int) -> bytes:
    ef = df.ef_by_sfi(sfi)
    if not isinstance(ef, TransparentFile):
        raise errors.FileNotFound()
    return bytes(ef.data)


def _records(df: DedicatedFile, sfi: int) -> RecordFile:
    ef = df.ef_by_sfi(sfi)
    if not isinstance(ef, RecordFile):
        raise errors.FileNotFound()
    return ef


def _written(ef: RecordFile) -> dict[int, CompositeRecord]:
    """The composite records of ``ef`` by record ID, leaving out never-written ones."""
    return {
        i + 1: CompositeRecord.decode(rec)
        for i, rec in enumerate(ef.records)
        if rec != _empty_composite(i + 1)
    }


def _composite_file(sfi: int, records: Mapping[int, CompositeRecord]) -> RecordFile:
    """EF 001A or 0019: the pre-allocated records, those of the card image filled in."""
    composite = [_empty_composite(rid) for rid in COMPOSITE_IDS]
    for rid, rec in records.items():
        if 1 <= rid <= len(composite):
            composite[rid - 1] = rec.encode()
    return RecordFile(
        fid=sfi, sfi=sfi, read=FREE, write=NEVER, structure=RecordStructure.LINEAR_VARIABLE,
        record_size=COMPOSITE_RECORD_SIZE, records=composite,
    )  # fmt: skip


def _pushed(ef: RecordFile, record: bytes, records: list[bytes] | None = None) -> list[bytes]:
    """The records of cyclic ``ef`` after appending ``record`` (it becomes record 1)."""
    current = ef.records if records is None else records
    out = [record, *current]
    return out[: ef.max_records] if ef.max_records else out


def _log_record(s: _Session, overdraft_limit: int, when: datetime) -> bytes:
    """The EF 0018 record (§P5.2) of the session's transaction, with the shared TxnRecord."""
    return TxnRecord(
        counter=s.counter, overdraft_limit=overdraft_limit, amount=s.amount,
        txn_type=s.txn_type, terminal_id=s.terminal_id, time=when,
    ).encode()  # fmt: skip


def build_purse_adf(
    profile: PurseProfile, keys: PurseKeys, *, fid: int | None = EP_ADF_FID
) -> DedicatedFile:
    """The EP ADF for ``profile``: EF 0015/16/17, 18, 19, 1A, 1E and the applet.

    Files are read-free and never writable from outside (writes go through 80DC and
    the purse commands). ``profile.blocked`` blocks the ADF (SELECT ``6A81``).
    """
    saved = profile.last_proof
    proof = (
        None
        if saved is None
        else TransactionProof(saved.counter, saved.txn_type, bytes(saved.mac2), bytes(saved.tac))
    )
    state = PurseState(
        value=profile.balance - profile.overdraft_used,
        overdraft_limit=profile.overdraft_limit,
        online_counter=profile.online_counter,
        offline_counter=profile.offline_counter,
        max_balance=profile.max_balance,
        proof=proof,
    )
    adf = DedicatedFile(
        fid=fid,
        name=AID,
        applet=PurseApplet(keys, state),
        blocked=profile.blocked,
        label_text="T-Union EP",
    )
    for sfi, layout in (
        (SFI_EF15, profile.ef0015),
        (SFI_EF16, profile.ef0016),
        (SFI_EF17, profile.ef0017),
    ):
        adf.add(
            TransparentFile(
                fid=sfi, sfi=sfi, data=bytearray(layout.encode()), read=FREE, write=NEVER
            )
        )
    adf.add_all(
        RecordFile(fid=SFI_LOG, sfi=SFI_LOG, structure=RecordStructure.CYCLIC, read=FREE,
                   write=NEVER, record_size=LOG_RECORD_SIZE, max_records=LOG_RECORDS,
                   records=[r.encode() for r in profile.txn_records][:LOG_RECORDS]),
        _composite_file(SFI_LOCAL_COMPOSITE, profile.local_composite_records),
        _composite_file(SFI_COMPOSITE, profile.composite_records),
        RecordFile(fid=SFI_TRIP, sfi=SFI_TRIP, structure=RecordStructure.CYCLIC, read=FREE,
                   write=NEVER, record_size=TRIP_RECORD_SIZE, max_records=TRIP_RECORDS,
                   records=[r.encode() for r in profile.trip_records][:TRIP_RECORDS]),
    )  # fmt: skip
    return adf


def build_ppse_ddf(*entries: PpseEntry) -> DedicatedFile:
    """The PPSE ``2PAY.SYS.DDF01`` whose SELECT answer lists ``entries`` (default: the EP
    with label ``MOT_T_EP``, priority 1), reference §P1.2."""
    fci = PpseFci(entries or (PpseEntry(AID, TUNION_EP_LABEL, 1),)).encode()
    return DedicatedFile(name=PPSE_NAME, applet=_FixedFci(fci), label_text="PPSE")


class _FixedFci(Applet):
    """An applet whose only job is a fixed SELECT answer (the PPSE directory)."""

    def __init__(self, fci: bytes) -> None:
        self.fci = fci
        self.instructions = {}

    def select_response(self, cos: CardOS, df: DedicatedFile) -> bytes:
        return self.fci


#: ATR of the standalone purse card (:func:`purse_card`): T=1, 4 historical bytes "TUEP".
PURSE_CARD_ATR = bytes.fromhex("3B8480014455455016")


def purse_card(
    profile: PurseProfile,
    keys: PurseKeys | KeySet,
    *,
    t0: bool = False,
    rng: Callable[[int], bytes] | None = None,
    on_commit: Callable[[CardOS], None] | None = None,
) -> CardOS:
    """A card carrying only the PPSE and the purse (tests, benchmarks, validator demos).

    The full social security card (SSSE + purse) is assembled by ``simulators.card``
    from :func:`build_purse_adf` and :func:`build_ppse_ddf`.
    """
    card_keys = purse_keys(keys, profile) if isinstance(keys, KeySet) else keys
    mf = DedicatedFile(fid=0x3F00)
    mf.add_all(build_ppse_ddf(), build_purse_adf(profile, card_keys))
    return CardOS(
        mf, atr=PURSE_CARD_ATR, t0=t0, rng=rng or secrets.token_bytes, on_commit=on_commit
    )


def find_purse(cos: CardOS) -> tuple[DedicatedFile, PurseApplet]:
    """The EP ADF of a card and its applet (tests and image saving)."""
    for df in cos.mf.walk():
        if isinstance(df.applet, PurseApplet):
            return df, df.applet
    raise errors.FileNotFound()


def sample_profile(*, balance: int = 0, algorithm_id: int = 0x00) -> PurseProfile:
    """A small fixed purse for tests and benchmarks (EF 0015 = the §P1.2 sample)."""
    from sscard.cards.purse import Ef0016, Ef0017

    ef15 = Ef0015.decode(
        bytes.fromhex("01011000FFFFFFFF02010310517001017090798420190806204012310000")
    )
    ef16 = Ef0016.decode(bytes(55))
    ef17 = Ef0017.decode(bytes.fromhex("0000015631003101000101") + bytes(49))
    return PurseProfile(
        algorithm_id=algorithm_id, ef0015=ef15, ef0016=ef16, ef0017=ef17, balance=balance
    )
