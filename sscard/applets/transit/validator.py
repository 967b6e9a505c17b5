"""The T-Union validator: one ``tap(conn)`` per card, a typed result, a journal that
never loses a tap.

A tap (reference §P1.2, §P2, §P3, §P5.5, §P5.7 and the sscard profile):

1. SELECT the EP; EF 0015 comes from the FCI's 9F0C (no READ BINARY).
2. An unfinished debit of this card (journal, by ASN)? Recover it first (§P5.7,
   :mod:`.recovery`): proven debited -> the trip counts, answer it, charge nothing more;
   proven not debited -> failed; not provable here (another terminal's proof, the
   debit rotated out of EF 0018) -> ``uncertain`` for clearing
   (docs/transit-recovery.md).
3. Checks, before any 8050: validity dates (EF 0015), blacklist (ASN), EF 0017
   category, interoperability flag for a card of another city, issuer trust list, and
   in flat and bus-segment modes the repeat-tap window (§P5.8, sscard profile: the
   same card again at this validator within ``repeat_tap_seconds`` of its last
   completed tap is refused "already paid"; metro gates refuse a second entry instead).
4. Fare: flat; or metro / bus-segment entry-exit from the composite record (1A record
   01 metro, profile; 02 bus, §P5.4) and the fare table (:mod:`.fares`). A local card
   (EF 0017 interoperability flag ``0000``) keeps that record in SFI 19 instead of 1A
   (§P5.4, profile "Metro composite record"): read, written and re-read after a tear
   from the same file (:func:`.purse.composite_sfi`).
5. Purchase: EF 0018 record 1 (the card's last transaction, kept in the journal row
   as clearing evidence) -> 8050 (03 composite / 01 simple) -> algorithm policy (00
   3DES, 04 SM4; anything else refused before 8070) -> 80DC 1A/19, 80DC 1E -> PSAM
   8070 -> journal ``begin`` (durable) -> 8054 -> PSAM 8072 -> journal ``complete``
   with TAC and MAC2. An 8054 answer other than the card's refusals 9302/9401 (a
   6Cxx the terminal does not re-send, an odd SW) goes straight to recovery while
   the card is still there: the debit is proven one way or the other, never guessed.

Entry/exit rules (project choices where §P5.5 leaves room, documented here):

* entry writes 1A (19) state 01 with the highest fare from this station flagged in bytes
  54-57 (``max_amount``) and a 1E record type 03, for a zero-amount composite purchase;
* a second entry while an entry in this network (same city code) is open and younger
  than ``max_trip_minutes`` is refused (``ALREADY_ENTERED``);
* an open entry older than that is a **missed tap-out**: the next entry charges the
  flagged fare in full (no discount, §P5.5 "no tap-off -> full fare") and starts a new
  trip. An open entry in another city's network is not ours to charge and is replaced;
* exit needs an open entry in this network (else ``NO_ENTRY``); the fare comes from the
  table, entry station -> this station (a station missing from the table: the flagged
  fare); category discount, then a transfer discount when the last charged leg
  (1E type 04/06, another line or mode) ended within the transfer window before the
  trip began; 1A (19) state 02, 1E type 04;
* bus-segment with ``gate = "auto"``: an open, fresh boarding on this line means
  alighting, anything else boarding.

The journal and the card cannot disagree: 8054 is all-or-nothing on the card (the
80DC records included), and its context is on disk before it is sent.

Every date-time the tap writes (8070, 8054, the 1E/1A records, hence the TAC) and every
fare rule uses Beijing time (:mod:`sscard.clock`, §P5.8) whatever the host's ``TZ``; the
terminal number comes from this validator's own PSAM (EF 16), which must be the one its
configuration names (``psam_terminal_id``), so each validator of a fleet is told apart.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sscard.apdu.errors import ApduFormatError, CardError
from sscard.applets.transit.config import ValidatorConfig
from sscard.applets.transit.errors import (
    NoPurse,
    PsamError,
    PurseBlocked,
    TransitConfigError,
    TransitError,
)
from sscard.applets.transit.fares import Fare, Station, compute_fare, penalty_fare
from sscard.applets.transit.psam import Mac2Check, Psam
from sscard.applets.transit.purse import Purse, composite_sfi
from sscard.applets.transit.recovery import RecoveryOutcome, recover
from sscard.applets.transit.results import (
    Refusal,
    TapAccepted,
    TapKind,
    TapRefused,
    TapResult,
)
from sscard.cards.ids import (
    SFI_TRIP,
    CompositeRecordId,
    CompositeState,
    Industry,
    TripRecordType,
    TxnType,
)
from sscard.cards.layout import Layout, LayoutError
from sscard.cards.purse import (
    CompositeRecord,
    Ef0015,
    Ef0017,
    PurchaseInitResponse,
    SamPurchaseInitData,
    TripRecord,
    TxnRecord,
)
from sscard.clock import Clock, card_now
from sscard.clock import now as beijing_now
from sscard.services.grey import TacChecker
from sscard.services.journal import CardTxn, Journal, PendingTap
from sscard.services.lists import Blacklist, TrustList
from sscard.terminals.connection import Connection
from sscard.terminals.errors import CommandOutcomeUnknown, TerminalError

#: 1E record types of a charged leg, for the transfer window.
_CHARGED = (TripRecordType.EP_EXIT, TripRecordType.EP_SINGLE)
#: (SFI, record ID, record) to send with 80DC, built once 8050 told the balance.
Records = list[tuple[int, int, Layout]]
#: 8054 answers that are the card's refusal before its commit point: MAC1 invalid,
#: insufficient balance. Any other SW is decided by recovery, not guessed.
_DEBIT_REFUSED = {0x9302: Refusal.MAC_INVALID, 0x9401: Refusal.INSUFFICIENT_BALANCE}


class Validator:
    """One validator (gate or bus reader) with its PSAM, journal and lists."""

    def __init__(
        self,
        config: ValidatorConfig,
        psam: Psam | Connection,
        *,
        journal: Journal | None = None,
        blacklist: Blacklist | None = None,
        trustlist: TrustList | None = None,
        clock: Clock = beijing_now,
        tac_checker: TacChecker | None = None,
    ) -> None:
        self.config = config
        #: Checks a recovered proof's TAC over the row's own data when the key is at
        #: hand (recovery.py); None on an ordinary validator.
        self.tac_checker = tac_checker
        self.psam = psam if isinstance(psam, Psam) else Psam(psam).open()
        expected = config.psam_terminal_id
        if expected is not None and expected != self.psam.terminal_id:
            raise TransitConfigError(
                f"validator.psam_terminal_id is {expected.hex().upper()} but the PSAM's"
                f" terminal number is {self.psam.terminal_id.hex().upper()}: one PSAM per"
                " validator",
                f"配置的PSAM终端机编号{expected.hex().upper()}与PSAM的"
                f"{self.psam.terminal_id.hex().upper()}不一致：每台验票机一张PSAM",
            )
        self._own_journal = journal is None
        self.journal = journal if journal is not None else Journal(config.journal_path)
        # Any row still pending was left by a crash mid-debit: it is torn (§P5.7).
        self.journal.mark_pending_unknown()
        if blacklist is None:
            path = config.blacklist_path
            blacklist = Blacklist.load(path) if path else Blacklist.empty()
        if trustlist is None:
            path = config.trustlist_path
            trustlist = TrustList.load(path) if path else TrustList.default()
        self.blacklist, self.trustlist = blacklist, trustlist
        self.clock = clock

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], psam: Psam | Connection, **kwargs: Any
    ) -> Validator:
        return cls(ValidatorConfig.load(path), psam, **kwargs)

    def close(self) -> None:
        if self._own_journal:
            self.journal.close()

    def __enter__(self) -> Validator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the tap

    def tap(self, conn: Connection) -> TapResult:
        """Serve the card behind ``conn`` (connected). Never raises for a bad card or
        a card pulled away; a journal that cannot be written raises ``JournalError``
        (the validator must stop: the row stays pending and is recovered on restart).
        """
        purse = Purse(conn)
        try:
            with conn.transaction():
                return self._tap(purse)
        except NoPurse:
            return TapRefused(reason=Refusal.NO_PURSE)
        except PurseBlocked:
            return TapRefused(reason=Refusal.BLOCKED)
        except PsamError as exc:
            return self._refuse(purse, Refusal.PSAM_ERROR, exc.message_en)
        except TerminalError:
            return self._refuse(purse, Refusal.CARD_REMOVED)
        except CardError as exc:
            return self._refuse(purse, Refusal.CARD_ERROR, f"SW {exc.sw:04X}")
        except (TransitError, LayoutError, ApduFormatError):
            return self._refuse(purse, Refusal.CARD_ERROR, "bad answer")

    @staticmethod
    def _refuse(purse: Purse, reason: Refusal, detail: str = "") -> TapRefused:
        asn = purse.fci.ef0015.asn if purse.fci is not None else None
        return TapRefused(reason=reason, asn=asn, detail=detail)

    def _tap(self, purse: Purse) -> TapResult:
        now = card_now(self.clock)
        ef15 = purse.select()
        pending = self.journal.pending_for_card(ef15.asn)
        if pending is not None:
            outcome = recover(purse, self.psam, self.journal, pending, tac_checker=self.tac_checker)
            if outcome.result is not None:
                return outcome.result
        refusal, ef17 = self._check(purse, ef15, now)
        if refusal is not None:
            return refusal
        assert ef17 is not None
        if self.config.entry_exit:
            return self._entry_exit(purse, ef15, ef17, now)
        return self._flat(purse, ef15, ef17, now)

    def _check(
        self, purse: Purse, ef15: Ef0015, now: datetime
    ) -> tuple[TapRefused | None, Ef0017 | None]:
        """Validity, blacklist, category, interoperability, trust: all before 8050."""
        cfg, asn, today = self.config, ef15.asn, now.date()
        if ef15.expiry_date < today:
            return TapRefused(reason=Refusal.EXPIRED, asn=asn), None
        if ef15.start_date > today:
            return TapRefused(reason=Refusal.NOT_YET_VALID, asn=asn), None
        listed = self.blacklist.check_asn(asn)
        if listed is not None:
            return TapRefused(reason=Refusal.BLACKLISTED, asn=asn, detail=listed.name), None
        ef17 = purse.read_ef0017()
        if ef17.category not in cfg.categories:
            detail = f"category {ef17.category}"
            return TapRefused(reason=Refusal.CATEGORY, asn=asn, detail=detail), None
        local = ef15.city_code == cfg.city_code
        if not local and not ef17.interoperable:
            return TapRefused(reason=Refusal.NOT_INTEROPERABLE, asn=asn), None
        if not local and not self.trustlist.trusts_purse(
            ef15.issuer_id, interoperable=ef17.interoperable
        ):
            return TapRefused(reason=Refusal.UNTRUSTED_ISSUER, asn=asn), None
        if self._repeated(asn, now):
            return TapRefused(reason=Refusal.ALREADY_PAID, asn=asn), None
        return None, ef17

    def _repeated(self, asn: str, now: datetime) -> bool:
        """A repeat tap (§P5.8, sscard profile): this card's last completed tap here is
        younger than ``repeat_tap_seconds``. Metro gates have their own rule (a second
        entry is ``ALREADY_ENTERED``)."""
        cfg = self.config
        if cfg.repeat_tap_seconds <= 0 or cfg.mode == "metro":
            return False
        last = self.journal.last_trip(asn)
        if last is None or last.terminal_id != cfg.terminal_id:
            return False
        return timedelta(0) <= now - last.txn_datetime < timedelta(seconds=cfg.repeat_tap_seconds)

    # ------------------------------------------------------------------ fares

    def _transfer(self, trips: list[TripRecord], since: datetime) -> bool:
        """Did the last charged leg (another line or mode) end within the window?"""
        cfg, window = self.config, self.config.policy.transfer_window_minutes
        if window <= 0:
            return False
        for trip in trips:
            if trip.time >= since and trip.record_type == TripRecordType.EP_ENTRY:
                continue  # this trip's own entry
            if trip.record_type not in _CHARGED:
                continue
            other = trip.industry != cfg.industry or trip.line_station[0:2] != _u(cfg.line, 2)
            return other and timedelta(0) <= since - trip.time <= timedelta(minutes=window)
        return False

    def _trip(self, kind: TripRecordType, fare: Fare, balance: int, now: datetime) -> TripRecord:
        """A 1E record (§P5.3): line 2 ‖ station 2 ‖ operator 2 ‖ 00, as bus writers do."""
        cfg = self.config
        return TripRecord(
            record_type=int(kind),
            terminal_id=bytes(2) + self.psam.terminal_id,
            industry=cfg.industry,
            line_station=_u(cfg.line, 2) + _u(cfg.station, 2) + cfg.operator + b"\x00",
            amount=fare.amount,
            balance=max(balance, 0),
            time=now,
            city_code=cfg.city_code,
            institution_id=cfg.institution_id,
        )

    def _flat(self, purse: Purse, ef15: Ef0015, ef17: Ef0017, now: datetime) -> TapResult:
        cfg = self.config
        composite = cfg.purchase == "composite"
        transfer = (
            self._transfer(purse.trips(3), now) if cfg.policy.transfer_window_minutes else False
        )
        fare = compute_fare(cfg.fare or 0, ef17.category, cfg.policy, transfer=transfer)

        def records(init: PurchaseInitResponse, balance: int) -> Records:
            if not composite:
                return []
            return [(SFI_TRIP, 0, self._trip(TripRecordType.EP_SINGLE, fare, balance, now))]

        return self._pay(
            purse, ef15, ef17, fare, TapKind.SINGLE, records, now, composite=composite,
            transfer=transfer,
        )  # fmt: skip

    def _entry_exit(self, purse: Purse, ef15: Ef0015, ef17: Ef0017, now: datetime) -> TapResult:
        cfg, here = self.config, self.config.here
        table = cfg.fare_table
        assert table is not None
        rid = CompositeRecordId.METRO if cfg.industry == Industry.METRO else CompositeRecordId.BUS
        sfi = composite_sfi(ef17)  # 1A interoperable, 19 local (§P5.4)
        rec = purse.composite(rid, sfi)
        open_here = (
            rec is not None
            and rec.state == CompositeState.ENTERED
            and rec.entry_city == cfg.city_code
            and rec.entry_operator == cfg.operator
        )
        fresh = bool(
            open_here
            and rec is not None
            and rec.entry_time is not None
            and now - rec.entry_time <= timedelta(minutes=cfg.max_trip_minutes)
        )
        gate = cfg.gate
        if gate == "auto":
            same_line = rec is not None and rec.entry_line == cfg.line
            gate = "exit" if fresh and same_line else "entry"
        serial = f"{now:%Y%m%d%H%M%S}{self.psam.terminal_id[-1]:02X}"  # 8-B BCD-like serial
        if gate == "entry":
            if fresh and cfg.gate == "entry":
                return TapRefused(reason=Refusal.ALREADY_ENTERED, asn=ef15.asn)
            fare = penalty_fare(rec.max_amount) if open_here and rec is not None else Fare(0)
            new = CompositeRecord(
                record_id=int(rid), txn_serial=serial, state=CompositeState.ENTERED,
                entry_city=cfg.city_code, entry_institution=cfg.institution_id,
                entry_operator=cfg.operator, entry_line=cfg.line, entry_stop=cfg.station,
                entry_vehicle=cfg.gate_id, entry_terminal=bytes(2) + self.psam.terminal_id,
                entry_time=now, max_amount=table.max_from(here),
            )  # fmt: skip
            kind, trip_type, entry_station = TapKind.ENTRY, TripRecordType.EP_ENTRY, None
            transfer = False
        else:
            if not open_here or rec is None:
                return TapRefused(reason=Refusal.NO_ENTRY, asn=ef15.asn)
            entry_station = Station(rec.entry_line, rec.entry_stop)
            base = table.fare(entry_station, here)
            if base is None:
                base = rec.max_amount or table.max_fare
            since = rec.entry_time or now
            transfer = bool(cfg.policy.transfer_window_minutes) and self._transfer(
                purse.trips(3), since
            )
            fare = compute_fare(base, ef17.category, cfg.policy, transfer=transfer)
            new = dataclasses.replace(
                rec, txn_serial=serial, state=CompositeState.EXITED, exit_city=cfg.city_code,
                exit_institution=cfg.institution_id, exit_operator=cfg.operator,
                exit_line=cfg.line, exit_stop=cfg.station, exit_vehicle=cfg.gate_id,
                exit_terminal=bytes(2) + self.psam.terminal_id, exit_time=now, fare=fare.amount,
            )  # fmt: skip
            kind, trip_type = TapKind.EXIT, TripRecordType.EP_EXIT

        def records(init: PurchaseInitResponse, balance: int) -> Records:
            trip = self._trip(trip_type, fare, balance, now)
            return [(sfi, int(rid), new), (SFI_TRIP, 0, trip)]

        return self._pay(
            purse, ef15, ef17, fare, kind, records, now, composite=True, transfer=transfer,
            entry_station=entry_station,
        )  # fmt: skip

    # ------------------------------------------------------------------ the purchase

    def _pay(
        self,
        purse: Purse,
        ef15: Ef0015,
        ef17: Ef0017,
        fare: Fare,
        kind: TapKind,
        records: Callable[[PurchaseInitResponse, int], Records],
        now: datetime,
        *,
        composite: bool,
        transfer: bool,
        entry_station: Station | None = None,
    ) -> TapResult:
        """8050 .. 8072 with the journal around 8054 (module docstring, step 5)."""
        cfg, psam, journal, asn = self.config, self.psam, self.journal, ef15.asn
        amount = fare.amount
        last = self._last_txn(purse)  # clearing evidence for the card's last debit
        try:
            init = purse.init_purchase(
                composite=composite,
                key_index=psam.key_index,
                amount=amount,
                terminal_id=psam.terminal_id,
            )
        except CardError as exc:
            if exc.sw == 0x9401:
                return TapRefused(reason=Refusal.INSUFFICIENT_BALANCE, asn=asn)
            raise
        if init.algorithm_id not in cfg.algorithms:
            detail = f"ID {init.algorithm_id:02X}"
            return TapRefused(reason=Refusal.ALGORITHM, asn=asn, detail=detail)
        balance_after = init.balance - amount
        built = records(init, balance_after)
        for sfi, rid, record in built:
            purse.update_cache(sfi, rid, record.encode())
        txn_type = TxnType.CAPP_PURCHASE if composite else TxnType.EP_PURCHASE
        sam = psam.init_purchase(
            SamPurchaseInitData(
                random=init.random,
                offline_counter=init.offline_counter,
                amount=amount,
                txn_type=int(txn_type),
                time=now,
                key_version=init.key_version,
                algorithm_id=init.algorithm_id,
                asn8=ef15.asn_right8,
                issuer_id=ef15.issuer_id,
            )
        )
        details: dict[str, Any] = {
            "mode": cfg.mode,
            "kind": kind.value,
            "category": ef17.category,
            "transfer": transfer,
            "entry_station": str(entry_station) if entry_station else None,
            **fare.as_dict(),
        }
        written = next(((s, rid) for s, rid, _ in built if s != SFI_TRIP), None)
        if written is not None:  # where recovery re-reads it after a tear (§P5.7)
            details["composite_sfi"], details["composite_record"] = written
        tap_id = journal.begin(
            PendingTap(
                terminal_id=cfg.terminal_id,
                psam_terminal_id=psam.terminal_id,
                terminal_seq=sam.terminal_seq,
                asn=bytes.fromhex(asn),
                issuer_id=ef15.issuer_id,
                txn_type=int(txn_type),
                amount=amount,
                balance_before=init.balance,
                card_counter=init.offline_counter,
                txn_datetime=now,
                line=str(cfg.line),
                station=str(cfg.here),
                fare=details,
                key_version=init.key_version,
                algorithm_id=init.algorithm_id,
                previous=last,
            )
        )
        try:
            debit = purse.debit(sam.terminal_seq, now, sam.mac1)
        except CardError as exc:
            refusal = _DEBIT_REFUSED.get(exc.sw)
            if refusal is not None:  # the card refused before its commit point
                journal.fail(tap_id, f"8054 SW {exc.sw:04X}")
                return TapRefused(reason=refusal, asn=asn, detail=f"SW {exc.sw:04X}")
            return self._recover_now(purse, tap_id, asn, f"SW {exc.sw:04X}")
        except CommandOutcomeUnknown as exc:  # 6Cxx on 8054: not re-sent (apdu.repeat)
            return self._recover_now(purse, tap_id, asn, f"SW {exc.sw:04X}")
        except (TerminalError, TransitError, ApduFormatError):  # no or invalid answer
            journal.mark_unknown(tap_id)
            return TapRefused(reason=Refusal.DEBIT_UNCERTAIN, asn=asn)
        mac2 = debit.mac2
        check = psam.verify_mac2(mac2)
        if check is Mac2Check.INVALID:
            # The PSAM keeps its context after 9302: one retry with the MAC2 of 805A (§P5.7).
            try:
                mac2 = purse.prove(int(txn_type), (init.offline_counter + 1) & 0xFFFF).mac2
                check = psam.verify_mac2(mac2)
            except (CardError, TerminalError, TransitError, ApduFormatError):
                pass
            if check is Mac2Check.INVALID:
                journal.fail(tap_id, "8072: MAC2 invalid")
                return TapRefused(reason=Refusal.MAC2_INVALID, asn=asn, detail="SW 9302")
        journal.complete(tap_id, debit.tac, mac2, balance_after)
        trip = next((r for s, _, r in built if s == SFI_TRIP), None)
        comp = next((r for s, _, r in built if s != SFI_TRIP), None)
        return TapAccepted(
            kind=kind,
            fare=amount,
            base_fare=fare.base,
            discount=fare.discount,
            balance=balance_after,
            asn=asn,
            tap_id=tap_id,
            station=str(cfg.here),
            entry_station=str(entry_station) if entry_station else None,
            category=ef17.category,
            transfer=transfer,
            penalty=fare.penalty,
            mac2_verified=check is Mac2Check.VALID,
            trip=trip if isinstance(trip, TripRecord) else None,
            composite=comp if isinstance(comp, CompositeRecord) else None,
        )

    @staticmethod
    def _last_txn(purse: Purse) -> CardTxn | None:
        """EF 0018 record 1, kept in the row for clearing (reference part K profile prev_*);
        a card that will not show it is still served (the evidence is just missing)."""
        try:
            last = purse.transactions(limit=1)
        except (CardError, TransitError):
            return None
        return _card_txn(last[0]) if last else None

    def _recover_now(self, purse: Purse, tap_id: int, asn: str, detail: str) -> TapResult:
        """8054 drew an answer that is neither the debit nor a refusal, and the card is
        still in the field with this debit's PSAM session: decide it now (§P5.7, as
        CardLan's ``SecondDebitChas`` does) instead of guessing."""
        self.journal.mark_unknown(tap_id)
        try:
            outcome: RecoveryOutcome = recover(
                purse, self.psam, self.journal, self.journal.get(tap_id),
                tac_checker=self.tac_checker,
            )  # fmt: skip
        except (CardError, TerminalError, TransitError, ApduFormatError):
            return TapRefused(reason=Refusal.DEBIT_UNCERTAIN, asn=asn, detail=detail)
        if outcome.result is not None:
            return outcome.result
        if outcome.debited is False:  # proven not taken: nothing charged, tap again
            return TapRefused(reason=Refusal.CARD_ERROR, asn=asn, detail=detail)
        return TapRefused(reason=Refusal.DEBIT_UNCERTAIN, asn=asn, detail=detail)


def _card_txn(txn: TxnRecord) -> CardTxn:
    return CardTxn(
        counter=txn.counter,
        txn_type=txn.txn_type,
        amount=txn.amount,
        terminal_id=txn.terminal_id,
        time=txn.time,
    )


def _u(value: int, size: int) -> bytes:
    return value.to_bytes(size, "big")
