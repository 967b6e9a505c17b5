"""The front-desk reader of the social security application (SSSE): data, PIN, genuineness.

What a hospital desk, a hotel or a counter does with the card (the MOHRSS social
security card specification, docs/reference.md part C): SELECT the SSSE by its DDF
name (§C2), read EF05 issuer data and EF06 holder data (§C1.3-1.5), prove the card genuine by internal authentication (IRK, §C3.4),
check the PIN (§C3.8) — on 2nd-generation (3DES) and 3rd-generation (SM4) cards alike,
told apart by the algorithm flag of the SELECT answer (§C3.1).

Choices made here:

* Records are read with READ RECORD by record number through the short file
  identifier (``00 B2 rr (SFI<<3)|4 Le``, §C1.3, HDOS): no SELECT EF, one APDU per
  item, Le = the item's TLV length from :data:`sscard.cards.ssse.SSSE_ITEMS`
  (``Connection`` follows ``6Cxx``/``61xx`` when a card disagrees).
* 3rd-generation cards: before EF06, GET CHALLENGE (8 B) and EXTERNAL AUTHENTICATE
  with RKSSSE (kid ``0A``, §C1.5; sscard profile for the SM4 cryptogram); the key
  provider computes E8, the terminal's source S8 is random.
* Internal authentication: process factor P8 and source S8 are fresh host randoms
  (§C3.4 uses a challenge as P8; any unpredictable value proves the card), and the key
  provider checks the 8-B answer. A wrong answer is :class:`IllegalCard` (−21).
* The "initial PIN cannot transact" rule (−35) is the host's: the card accepts its
  initial PIN, the reader refuses to go on when the PIN entered equals the issuer's
  ``initial_pin`` (configured; unknown by default, §C3.8 says the default is not
  public). CHANGE PIN back to the initial PIN is refused by the card with ``6985``
  (simulator profile) and reported as −36.

PIN and holder exchanges are sent with ``sensitive=True``, so a trace never holds them.
Personal fields stay out of every repr; :meth:`CardRead.to_dict` masks them by default.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sscard.apdu import CardError, Command, Response
from sscard.apdu import errors as sw_errors
from sscard.apdu.catalog import CLA_ISO, CLA_PROPRIETARY, Ins
from sscard.apdu.codec import to_bcd
from sscard.applets.keyprovider import HsmInputError, KeyProvider, PsamMissing
from sscard.cards.ids import EF05_FID, EF05_SFI, EF06_FID, EF06_SFI, SSSE_DDF_NAME, SsseKeyId
from sscard.cards.privacy import mask_card_id, mask_card_number, mask_name, mask_ssn
from sscard.cards.regions import Region, UnknownRegion, region_of
from sscard.cards.ssse import CardIdCode, Ef05, Ef06, SsseFci, items_of
from sscard.crypto.ssse import SsseAlgorithm
from sscard.errors import SscardError
from sscard.terminals.connection import Connection

__all__ = [
    "CannotRevertToInitialPin",
    "CardRead",
    "HolderData",
    "HsmChallenge",
    "HsmMismatch",
    "HsmNotNeeded",
    "IllegalCard",
    "InitialPinNotAllowed",
    "IssuerData",
    "KeysRequired",
    "PinFormatError",
    "SsseApplication",
    "SsseBlocked",
    "SsseReader",
    "WrongCardType",
]

PIN_LENGTH = 6
SEX_TEXT = {"1": ("male", "男"), "2": ("female", "女")}


# =========================================================================== errors


class WrongCardType(SscardError):
    """The card has no SSSE (SELECT answers 6A82): unified code −1 (§C4.5)."""

    code = -1
    message_en = "wrong card type: not a social security card"
    message_zh = "卡类型错误：不是社会保障卡"


class SsseBlocked(CardError):
    """SELECT answered 6A81 or a command 9303: the SSSE is locked (code −SW, §C2.1)."""

    def __init__(self, sw: int | None = None) -> None:
        super().__init__(sw)
        self.message_en = (
            f"social security application is locked (SW {self.sw:04X}): the holder can have "
            "it unblocked at a card service point of the issuing place, or call 12333"
        )
        self.message_zh = (
            f"社会保障应用已锁定（状态字 {self.sw:04X}）：请持卡人到发卡地社保卡服务网点解锁，"
            "或拨打12333"
        )
        self.args = (self.message_en,)


class IllegalCard(SscardError):
    """Internal authentication failed: a counterfeit card (−21, §C4.5)."""

    code = -21
    message_en = "illegal card (internal authentication failed)"
    message_zh = "非法卡（内部认证失败）"


class KeysRequired(PsamMissing):
    """The operation needs card keys and no key provider was given (−2201)."""

    message_en = "no PSAM or key provider: card keys are needed for this"
    message_zh = "无PSAM卡或密钥来源：此操作需要卡片密钥"


class InitialPinNotAllowed(SscardError):
    """The PIN is the issuer's initial PIN: it must be changed before use (−35)."""

    code = -35
    message_en = "the initial PIN cannot be used to transact: change it first"
    message_zh = "初始密码不能交易，请先修改密码"


class CannotRevertToInitialPin(SscardError):
    """CHANGE PIN to the issuer's initial PIN is refused (−36; card SW 6985)."""

    code = -36
    message_en = "the PIN cannot be changed back to the initial PIN"
    message_zh = "不能改回初始密码"


class PinFormatError(SscardError):
    """A PIN that is not 6 digits: −41 illegal characters, −42 wrong length (§C4.5)."""

    code = -42
    message_en = f"a PIN has {PIN_LENGTH} digits"
    message_zh = f"密码应为{PIN_LENGTH}位数字"


class HsmMismatch(SscardError):
    """The card's internal authentication differs from the HSM's INT (−25, §C3.6)."""

    code = -25
    message_en = "internal authentication does not match the HSM result"
    message_zh = "内部认证结果与加密机不一致"


class HsmNotNeeded(SscardError):
    """The HSM steps serve 3rd-generation cards; this card needs none (−2204)."""

    code = -2204
    message_en = "HSM not needed for this card (2nd generation)"
    message_zh = "此卡（二代卡）无需加密机"


# =========================================================================== results


@dataclass(frozen=True)
class SsseApplication:
    """The selected SSSE: algorithm flag of ``9F0C 03 86 01 aa`` (§C3.1) and generation."""

    algorithm: int
    generation: int
    df_name: bytes

    @classmethod
    def from_fci(cls, fci: SsseFci) -> SsseApplication:
        generation = 3 if fci.algorithm == SsseAlgorithm.SM4 else 2
        return cls(algorithm=fci.algorithm, generation=generation, df_name=fci.df_name)


@dataclass(frozen=True)
class IssuerData:
    """EF05 issuer data (§C1.4) and the region decoded from the card identification code."""

    ef05: Ef05
    region: Region | None

    @property
    def card_id(self) -> CardIdCode:
        return self.ef05.card_id

    @property
    def card_id_hex(self) -> str:
        return self.ef05.card_id.hex

    @property
    def region_code(self) -> str:
        return self.ef05.card_id.region

    @property
    def card_type(self) -> str:
        return self.ef05.card_type

    @property
    def spec_version(self) -> str:
        return self.ef05.spec_version

    @property
    def issue_date(self) -> date:
        return self.ef05.issue_date

    @property
    def expiry_date(self) -> date:
        return self.ef05.expiry_date

    @property
    def card_number(self) -> str:
        """The interface reads only the first 9 characters (§C1.4, §C4.2)."""
        return self.ef05.card_number[:9]

    @property
    def generation(self) -> int:
        return self.ef05.generation

    def expired(self, today: date) -> bool:
        return self.ef05.expired(today)

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        region = self.region
        return {
            "region_code": self.region_code,
            "region_zh": region.name_zh if region else "",
            "region_en": region.name_en if region else "",
            "card_id": mask_card_id(self.card_id_hex) if redact else self.card_id_hex,
            "card_type": self.card_type,
            "spec_version": self.spec_version,
            "issue_date": self.issue_date.isoformat(),
            "expiry_date": self.expiry_date.isoformat(),
            "card_number": mask_card_number(self.card_number) if redact else self.card_number,
        }


@dataclass(frozen=True)
class HolderData:
    """EF06 holder basic information (§C1.5); the repr shows nothing personal."""

    ef06: Ef06 = dataclasses.field(repr=False)

    @property
    def ssn(self) -> str:
        return self.ef06.ssn

    @property
    def name(self) -> str:
        return self.ef06.name

    @property
    def name_ext(self) -> str:
        return self.ef06.name_ext

    @property
    def full_name(self) -> str:
        """Name + name extension, as the interface spec says (§C1.5, §C4.2)."""
        return self.ef06.full_name

    @property
    def sex(self) -> str:
        return self.ef06.sex

    @property
    def ethnicity(self) -> str:
        return self.ef06.ethnicity

    @property
    def birthplace(self) -> str:
        return self.ef06.birthplace

    @property
    def birth_date(self) -> date:
        return self.ef06.birth_date

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        """Masked by default: SSN region + last 4, surname, birth year, birthplace prefecture."""
        sex_en, sex_zh = SEX_TEXT.get(self.sex, ("unknown", "未知"))
        if redact:
            ssn, name = mask_ssn(self.ssn), mask_name(self.full_name)
            birth = f"{self.birth_date.year:04d}-**-**"
            birthplace = self.birthplace[:4] + "**"
        else:
            ssn, name = self.ssn, self.full_name
            birth, birthplace = self.birth_date.isoformat(), self.birthplace
        return {
            "ssn": ssn,
            "name": name,
            "sex": self.sex,
            "sex_en": sex_en,
            "sex_zh": sex_zh,
            "ethnicity": self.ethnicity,
            "birthplace": birthplace,
            "birth_date": birth,
        }


@dataclass(frozen=True)
class CardRead:
    """Everything one :meth:`SsseReader.read` learned, and how long it took.

    ``genuine``: True = internal authentication passed, None = not checked (no key
    provider, or not asked). ``skipped`` lists what was not read for lack of keys
    (``"holder"``, ``"authentication"``). ``apdu_count`` counts commands sent (not
    the GET RESPONSE / 6Cxx follow-ups).
    """

    atr: bytes
    application: SsseApplication
    issuer: IssuerData
    holder: HolderData | None
    genuine: bool | None
    expired: bool
    pin_verified: bool
    skipped: tuple[str, ...]
    terminal_number: str
    apdu_count: int
    elapsed_s: float

    @property
    def generation(self) -> int:
        return self.application.generation

    @property
    def atr_historical_hex(self) -> str:
        """The ATR without its first 4 bytes (readers do ``atr.Mid(8)``, §C5)."""
        return self.atr[4:].hex().upper()

    def to_dict(self, redact: bool = True) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "algorithm": f"{self.application.algorithm:02X}",
            "atr": self.atr.hex().upper(),
            "issuer": self.issuer.to_dict(redact),
            "holder": None if self.holder is None else self.holder.to_dict(redact),
            "genuine": self.genuine,
            "expired": self.expired,
            "pin_verified": self.pin_verified,
            "skipped": list(self.skipped),
            "terminal_number": self.terminal_number,
            "apdu_count": self.apdu_count,
            "elapsed_ms": round(self.elapsed_s * 1000, 3),
        }

    def redacted(self) -> dict[str, Any]:
        return self.to_dict(redact=True)


@dataclass(frozen=True)
class HsmChallenge:
    """What ``iReadCardBas_HSM_Step1`` hands the host (§C3.6, §C4.3).

    Random fields in SCJS order: internal process, internal source, external process
    (the card's last challenge, the one it checks), external source.
    """

    region_code: str
    atr_historical_hex: str
    algorithm: int
    card_id_hex: str
    int_process: bytes
    int_source: bytes
    ext_process: bytes
    ext_source: bytes
    terminal_number: str = ""

    def to_string(self) -> str:
        fields = [
            self.region_code,
            self.atr_historical_hex,
            f"{self.algorithm:02X}",
            self.card_id_hex,
            *(b.hex().upper() for b in (self.int_process, self.int_source)),
            *(b.hex().upper() for b in (self.ext_process, self.ext_source)),
        ]
        if self.terminal_number:
            fields.append(self.terminal_number)
        return "|".join(fields) + "|"


# =========================================================================== the reader


def _pin_bcd(pin: str) -> bytes:
    if not pin.isascii() or not pin.isdigit():
        raise PinFormatError(
            "a PIN has digits only", "密码只能包含数字", code=-41
        )  # never echo the PIN
    if len(pin) != PIN_LENGTH:
        raise PinFormatError()
    return to_bcd(pin)


class SsseReader:
    """One card session at a front desk; cheap to create, not thread-safe.

    ``keys`` supplies card cryptograms (PSAM, software key set); None reads only what
    needs no keys. ``terminal_id`` overrides the terminal number (iReadCardBas field
    10) the key provider reports. ``initial_pin`` is the issuer's initial PIN, if the
    deployment knows it (rule −35). ``today`` and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        conn: Connection,
        keys: KeyProvider | None = None,
        *,
        terminal_id: str | None = None,
        initial_pin: str | None = None,
        today: Callable[[], date] = date.today,
        rng: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.conn = conn
        self.keys = keys
        self.terminal_id = terminal_id
        self._initial_pin = initial_pin
        self._today = today
        self._rng = rng
        self.apdu_count = 0
        self._app: SsseApplication | None = None
        self._issuer: IssuerData | None = None
        self._hsm_int: bytes | None = None

    def __repr__(self) -> str:
        return f"<SsseReader {self.conn.reader!r} keys={type(self.keys).__name__}>"

    # -- exchanges --------------------------------------------------------------------

    def _transmit(self, command: Command, *, sensitive: bool | None = None) -> Response:
        self.apdu_count += 1
        return self.conn.transmit(command, sensitive=sensitive)

    def _send(self, command: Command, *, sensitive: bool | None = None) -> Response:
        response = self._transmit(command, sensitive=sensitive)
        if response.sw == 0x9303:
            raise SsseBlocked(0x9303)
        return response.check(command.ins)

    @property
    def terminal_number(self) -> str:
        if self.terminal_id is not None:
            return self.terminal_id
        return self.keys.terminal_number if self.keys is not None else ""

    # -- application and files ----------------------------------------------------------

    def select(self) -> SsseApplication:
        """SELECT SSSE by DDF name (§C2); 6A82 -> WrongCardType (−1), 6A81 -> SsseBlocked."""
        response = self._transmit(
            Command(CLA_ISO, Ins.SELECT, 0x04, 0x00, SSSE_DDF_NAME), sensitive=False
        )
        if response.sw in (0x6A82, 0x6A86, 0x6D00, 0x6E00):
            raise WrongCardType()
        if response.sw in (0x6A81, 0x9303):
            raise SsseBlocked(response.sw)
        response.check(0xA4)
        self._app = SsseApplication.from_fci(SsseFci.decode(response.data))
        self._issuer = None
        self._hsm_int = None
        return self._app

    def _application(self) -> SsseApplication:
        return self._app if self._app is not None else self.select()

    def _read_records(self, ef: int, sfi: int, *, sensitive: bool | None) -> list[bytes]:
        """READ RECORD by number via SFI for every item of the EF; absent name ext skipped."""
        records = []
        for item in items_of(ef):
            cmd = Command(
                CLA_ISO, Ins.READ_RECORD, item.record, (sfi << 3) | 0x04, le=item.length + 2
            )
            response = self._transmit(cmd, sensitive=sensitive)
            if response.sw == 0x6A83 and item.attr == "name_ext":
                continue  # 1st-generation cards have no name extension (§C1.5)
            if response.sw == 0x9303:
                raise SsseBlocked(0x9303)
            records.append(response.check(0xB2).data)
        return records

    def read_issuer(self) -> IssuerData:
        """EF05 (§C1.4): readable without PIN or authentication; region from the card ID."""
        self._application()
        # the card number is identifying: the tracer's default rule redacts READ RECORD answers
        ef05 = Ef05.from_tlvs(self._read_records(EF05_FID, EF05_SFI, sensitive=None))
        try:
            region: Region | None = region_of(ef05.card_id.region)
        except UnknownRegion:
            region = None
        self._issuer = IssuerData(ef05=ef05, region=region)
        return self._issuer

    def _issuer_data(self) -> IssuerData:
        return self._issuer if self._issuer is not None else self.read_issuer()

    def _external_auth(self) -> None:
        """GET CHALLENGE 8 B, then ``00 82 00 0A 10 E8‖S8`` with RKSSSE (§C1.5, profile)."""
        if self.keys is None:
            raise KeysRequired()
        app, issuer = self._application(), self._issuer_data()
        challenge = self._send(Command(CLA_ISO, Ins.GET_CHALLENGE, 0x00, 0x00, le=8)).data
        source = self._rng(8)
        e8 = self.keys.external_cryptogram(
            issuer.card_id.encode(), app.algorithm, challenge, source, SsseKeyId.RKSSSE
        )
        cmd = Command(CLA_ISO, Ins.EXTERNAL_AUTHENTICATE, 0x00, SsseKeyId.RKSSSE, e8 + source)
        self._send(cmd, sensitive=True)

    def read_holder(self) -> HolderData:
        """EF06 (§C1.5); on 3rd-generation cards after external authentication with RKSSSE."""
        app = self._application()
        self._issuer_data()
        if app.generation >= 3:
            self._external_auth()
        return self._read_holder_records()

    def _read_holder_records(self) -> HolderData:
        return HolderData(Ef06.from_tlvs(self._read_records(EF06_FID, EF06_SFI, sensitive=True)))

    # -- card authentication --------------------------------------------------------------

    def _internal_auth(self, process8: bytes, source8: bytes) -> bytes:
        cmd = Command(CLA_ISO, Ins.INTERNAL_AUTHENTICATE, 0x00, SsseKeyId.IRK, process8 + source8)
        return self._send(cmd, sensitive=True).data

    def authenticate(self) -> None:
        """Internal authentication (IRK, §C3.4): the card proves it holds its key.

        A wrong answer (or a card refusing with 6A88/6982) is :class:`IllegalCard`.
        """
        if self.keys is None:
            raise KeysRequired()
        app, issuer = self._application(), self._issuer_data()
        process, source = self._rng(8), self._rng(8)
        try:
            answer = self._internal_auth(process, source)
        except (sw_errors.KeyNotFound, sw_errors.SecurityNotSatisfied):
            raise IllegalCard() from None
        card_id = issuer.card_id.encode()
        if len(answer) != 8 or not self.keys.verify_internal(
            card_id, app.algorithm, process, source, answer
        ):
            raise IllegalCard()

    # -- PIN ------------------------------------------------------------------------------

    def pin_tries_left(self) -> int | None:
        """``00 20 00 00`` without data: tries left (63Cx), 0 if blocked, None if verified."""
        self._application()
        response = self._transmit(Command(CLA_ISO, Ins.VERIFY, 0x00, 0x00), sensitive=True)
        if response.sw == 0x9000:
            return None
        if response.sw & 0xFFF0 == 0x63C0:
            return response.sw & 0x0F
        if response.sw == 0x6983:
            return 0
        response.check(0x20)
        return None

    def verify_pin(self, pin: str) -> None:
        """VERIFY ``00 20 00 00 03 PIN-BCD`` (§C2, P2 = 00).

        Raises PinIncorrect (−51, ``tries_left``), PinBlocked (−52), or
        InitialPinNotAllowed (−35) when ``pin`` is the configured initial PIN.
        """
        bcd = _pin_bcd(pin)
        self._application()
        self._send(Command(CLA_ISO, Ins.VERIFY, 0x00, 0x00, bcd), sensitive=True)
        if self._initial_pin is not None and hmac.compare_digest(pin, self._initial_pin):
            raise InitialPinNotAllowed()

    def change_pin(self, old: str, new: str) -> None:
        """CHANGE PIN ``80 5E 01 00 Lc old‖FF‖new`` (§C2, PINC).

        Card 6985 (or ``new`` = the configured initial PIN) -> CannotRevertToInitialPin.
        """
        old_bcd, new_bcd = _pin_bcd(old), _pin_bcd(new)
        if self._initial_pin is not None and hmac.compare_digest(new, self._initial_pin):
            raise CannotRevertToInitialPin()
        self._application()
        try:
            self._send(
                Command(CLA_PROPRIETARY, Ins.CHANGE_PIN, 0x01, 0x00, old_bcd + b"\xff" + new_bcd),
                sensitive=True,
            )
        except sw_errors.ConditionsNotSatisfied:
            raise CannotRevertToInitialPin() from None

    # -- everything -----------------------------------------------------------------------

    def read(self, *, verify_pin: str | None = None, authenticate: bool = True) -> CardRead:
        """SELECT, EF05, [external auth], EF06, [PIN], internal auth: one :class:`CardRead`.

        Without a key provider the parts needing keys are skipped and listed in
        ``skipped``; with one, their failures raise. An expired card is read and
        reported (``expired=True``), not refused.

        Runs inside one PC/SC transaction, so no other application on a shared
        reader can slip a command between a GET CHALLENGE and the authentication
        that consumes it.
        """
        start, count = time.perf_counter(), self.apdu_count
        with self.conn.transaction():
            app = self.select()
            issuer = self.read_issuer()
            skipped: list[str] = []
            holder = None
            if app.generation >= 3 and self.keys is None:
                skipped.append("holder")
            else:
                holder = self.read_holder()
            if verify_pin is not None:
                self.verify_pin(verify_pin)
            genuine: bool | None = None
            if authenticate:
                if self.keys is None:
                    skipped.append("authentication")
                else:
                    self.authenticate()
                    genuine = True
        return self._result(app, issuer, holder, genuine, verify_pin is not None, skipped,
                            start, count)  # fmt: skip

    def _result(
        self,
        app: SsseApplication,
        issuer: IssuerData,
        holder: HolderData | None,
        genuine: bool | None,
        pin_verified: bool,
        skipped: list[str],
        start: float,
        count: int,
    ) -> CardRead:
        return CardRead(
            atr=self.conn.atr,
            application=app,
            issuer=issuer,
            holder=holder,
            genuine=genuine,
            expired=issuer.expired(self._today()),
            pin_verified=pin_verified,
            skipped=tuple(skipped),
            terminal_number=self.terminal_number,
            apdu_count=self.apdu_count - count,
            elapsed_s=time.perf_counter() - start,
        )

    # -- HSM two-step (§C3.6, §C4.3) ----------------------------------------------------------

    def hsm_step1(self) -> HsmChallenge:
        """Card side of ``iReadCardBas_HSM_Step1``: challenges for the host's HSM.

        SELECT, EF05, GET CHALLENGE ×2 -> internal authentication run now (answer kept
        for Step2), GET CHALLENGE ×2 for external authentication (the card checks the
        last one). 2nd-generation cards read EF06 freely: :class:`HsmNotNeeded` (−2204).
        """
        app = self.select()
        if app.generation < 3:
            raise HsmNotNeeded()
        issuer = self.read_issuer()
        get_challenge = Command(CLA_ISO, Ins.GET_CHALLENGE, 0x00, 0x00, le=8)
        c1 = self._send(get_challenge).data
        c2 = self._send(get_challenge).data
        self._hsm_int = self._internal_auth(c2, c1)  # 0088 0000 10 rnd2‖rnd1 (SCJS)
        c3 = self._send(get_challenge).data
        c4 = self._send(get_challenge).data
        return HsmChallenge(
            region_code=issuer.region_code,
            atr_historical_hex=self.conn.atr[4:].hex().upper(),
            algorithm=app.algorithm,
            card_id_hex=issuer.card_id_hex,
            int_process=c2,
            int_source=c1,
            ext_process=c4,
            ext_source=c3,
            terminal_number=self.terminal_number,
        )

    def hsm_step2(self, p_key: str) -> CardRead:
        """Card side of ``Step2(pKey)``, ``pKey = INT(32 hex)|EXT(32 hex)|`` (§C3.6).

        INT[0:16 hex] must equal the kept internal-authentication answer (else
        :class:`HsmMismatch`, −25); EXT goes to ``00 82 00 0A 10``; then EF06.
        """
        start, count = time.perf_counter(), self.apdu_count
        kept, app, issuer = self._hsm_int, self._app, self._issuer
        if kept is None or app is None or issuer is None:
            raise HsmInputError("HSM Step2 without Step1", "未执行加密机第一步")
        parts = p_key.split("|")
        try:
            int_block, ext = bytes.fromhex(parts[0]), bytes.fromhex(parts[1])
        except (ValueError, IndexError):
            raise HsmInputError() from None
        if len(int_block) < 8 or len(ext) != 16:
            raise HsmInputError()
        self._hsm_int = None
        if not hmac.compare_digest(int_block[:8], kept):
            raise HsmMismatch()
        self._send(
            Command(CLA_ISO, Ins.EXTERNAL_AUTHENTICATE, 0x00, SsseKeyId.RKSSSE, ext), sensitive=True
        )
        holder = self._read_holder_records()
        return self._result(app, issuer, holder, True, False, [], start, count)
