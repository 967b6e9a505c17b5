"""The ISO 7816-4 and social-security commands every simulated card understands.

Each handler is ``(cos, cmd) -> data`` and raises :mod:`sscard.apdu.errors` for
any other status word. APDU forms: reference §C1.3 (READ
RECORD modes, SFI), §C2 (command table), §C3.4-3.8 (authentication, MAC, PIN) and
its "sscard profile" section (SM4 authentication, secure messaging, UNBLOCK PIN).
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from sscard.apdu import Command, errors
from sscard.apdu.catalog import CLA_ISO, CLA_PROPRIETARY, Ins
from sscard.apdu.tlv import Tlv
from sscard.simulators.cos.applet import Handler
from sscard.simulators.cos.files import (
    DedicatedFile,
    ElementaryFile,
    Key,
    KeyUse,
    Pin,
    RecordFile,
    RecordStructure,
    TransparentFile,
)

if TYPE_CHECKING:  # card_os imports this module to fill its instruction table
    from sscard.simulators.cos.card_os import CardOS

# ------------------------------------------------------------------ SELECT


def default_fci(df: DedicatedFile) -> bytes:
    """``6F [84 name] [83 fid] [A5 proprietary]`` (ISO 7816-4 §5.3.3)."""
    children = []
    if df.name:
        children.append(Tlv(0x84, df.name))
    elif df.fid is not None:
        children.append(Tlv(0x83, df.fid.to_bytes(2, "big")))
    if df.proprietary:
        children.append(Tlv(0xA5, df.proprietary))
    return Tlv.of(0x6F, *children).encode()


def _fid(data: bytes) -> int:
    if len(data) != 2:
        raise errors.WrongLength()
    return int.from_bytes(data, "big")


def _resolve_path(start: DedicatedFile, path: bytes) -> DedicatedFile | ElementaryFile:
    if not path or len(path) % 2:
        raise errors.WrongLength()
    node: DedicatedFile | ElementaryFile = start
    for i in range(0, len(path), 2):
        fid = int.from_bytes(path[i : i + 2], "big")
        if not isinstance(node, DedicatedFile):
            raise errors.FileNotFound()
        if i == 0 and fid == 0x3F00 and node.parent is None:
            continue  # tolerate an explicit MF at the start of an absolute path
        child = node.child_by_fid(fid)
        if child is None:
            raise errors.FileNotFound()
        node = child
    return node


def _by_fid(cos: CardOS, fid: int) -> DedicatedFile | ElementaryFile:
    """P1=00: MF, a child of the current DF, the current DF, its parent, or a sibling DF."""
    if fid == 0x3F00:
        return cos.mf
    cur = cos.current_df
    found = cur.child_by_fid(fid)
    if found is not None:
        return found
    if cur.fid == fid:
        return cur
    parent = cur.parent
    if parent is not None:
        if parent.fid == fid:
            return parent
        sibling = parent.child_by_fid(fid)
        if isinstance(sibling, DedicatedFile):
            return sibling
    raise errors.FileNotFound()


def _by_name(cos: CardOS, name: bytes) -> DedicatedFile:
    """P1=04: exact DF name anywhere on the card, else the first name it is a prefix of."""
    if not 1 <= len(name) <= 16:
        raise errors.WrongLength()
    dfs = [df for df in cos.mf.walk() if df.name]
    for df in dfs:
        if df.name == name:
            return df
    for df in dfs:
        if df.name is not None and df.name.startswith(name):
            return df
    raise errors.FileNotFound()


def select(cos: CardOS, cmd: Command) -> bytes:
    """SELECT (``00 A4``): P1 00/01/02/03/04/08/09; P2 00 (FCI) or 0C (no data)."""
    p1, p2, data = cmd.p1, cmd.p2, cmd.data
    if p2 not in (0x00, 0x04, 0x0C):
        raise errors.WrongParameters()
    target: DedicatedFile | ElementaryFile
    if p1 == 0x00:
        target = cos.mf if not data else _by_fid(cos, _fid(data))
    elif p1 in (0x01, 0x02):
        child = cos.current_df.child_by_fid(_fid(data))
        want = DedicatedFile if p1 == 0x01 else ElementaryFile
        if not isinstance(child, want):
            raise errors.FileNotFound()
        target = child
    elif p1 == 0x03:
        if data:
            raise errors.WrongLength()
        if cos.current_df.parent is None:
            raise errors.FileNotFound()
        target = cos.current_df.parent
    elif p1 == 0x04:
        target = _by_name(cos, data)
    elif p1 in (0x08, 0x09):
        target = _resolve_path(cos.mf if p1 == 0x08 else cos.current_df, data)
    else:
        raise errors.WrongParameters()
    if isinstance(target, ElementaryFile):
        if target.parent is not None and target.parent is not cos.current_df:
            cos.select_df(target.parent)
        cos.security.current_ef = target
        cos.security.current_record = None
        return b""
    if target.blocked:
        raise errors.FunctionNotSupported()  # profile: blocked application -> 6A81
    cos.select_df(target)
    if p2 == 0x0C:
        return b""
    if target.applet is not None:
        answer = target.applet.select_response(cos, target)
        if answer is not None:
            return answer
    return default_fci(target)


# ------------------------------------------------------------------ READ / UPDATE


def _ef_by_sfi(cos: CardOS, sfi: int) -> ElementaryFile:
    if not 1 <= sfi <= 30:
        raise errors.WrongParameters()
    ef = cos.current_df.ef_by_sfi(sfi)
    if ef is None:
        raise errors.FileNotFound()
    cos.security.current_ef = ef
    cos.security.current_record = None
    return ef


def _current_ef(cos: CardOS) -> ElementaryFile:
    ef = cos.current_ef
    if ef is None:
        raise errors.InvalidState(0x6986)  # no current EF
    return ef


def _binary_target(cos: CardOS, cmd: Command) -> tuple[TransparentFile, int]:
    if cmd.p1 & 0x80:  # P1 = 1 00 sfi(5), P2 = offset (e.g. B0 95 00)
        if cmd.p1 & 0x60:
            raise errors.WrongParameters()
        ef = _ef_by_sfi(cos, cmd.p1 & 0x1F)
        offset = cmd.p2
    else:
        ef = _current_ef(cos)
        offset = (cmd.p1 << 8) | cmd.p2
    if not isinstance(ef, TransparentFile):
        raise errors.FileStructureIncompatible()
    return ef, offset


def read_binary(cos: CardOS, cmd: Command) -> bytes:
    """READ BINARY ``00 B0``: current EF with a 15-bit offset, or SFI form ``B0 8s oo``."""
    ef, offset = _binary_target(cos, cmd)
    cos.check_access(ef, ef.read, cmd)
    if offset > len(ef.data):
        raise errors.WrongParameters(0x6B00)
    le = cmd.le or 256
    return bytes(ef.data[offset : offset + le])


def update_binary(cos: CardOS, cmd: Command) -> bytes:
    """UPDATE BINARY ``00/04/84 D6``; plain or with the profile's secure-messaging MAC."""
    ef, offset = _binary_target(cos, cmd)
    data = cos.check_access(ef, ef.write, cmd)
    if offset > len(ef.data):
        raise errors.WrongParameters(0x6B00)
    if not data or offset + len(data) > len(ef.data):
        raise errors.WrongLength()

    def apply() -> None:
        ef.data[offset : offset + len(data)] = data

    cos.commit(apply)
    return b""


def _record_target(cos: CardOS, p2: int) -> RecordFile:
    sfi = p2 >> 3
    ef = _ef_by_sfi(cos, sfi) if sfi else _current_ef(cos)
    if not isinstance(ef, RecordFile):
        raise errors.FileStructureIncompatible()
    return ef


def _record_index(cos: CardOS, ef: RecordFile, p1: int, mode: int) -> int:
    """Index of the record addressed by P1 and the P2 mode bits (reference §C1.3)."""
    count = len(ef.records)
    if mode == 0x04:  # P1 = record number, 00 = current record
        if p1 == 0:
            index = cos.security.current_record
            if index is None:
                raise errors.RecordNotFound()
        else:
            index = p1 - 1
        if index >= count:
            raise errors.RecordNotFound()
        return index
    if mode in (0x00, 0x01):  # P1 = record identifier (simple-TLV tag): first / last
        if p1 in (0x00, 0xFF):
            raise errors.WrongParameters()
        order = range(count) if mode == 0 else range(count - 1, -1, -1)
        for i in order:
            rec = ef.records[i]
            if rec and rec[0] == p1:
                return i
        raise errors.RecordNotFound()
    raise errors.WrongParameters()


def read_record(cos: CardOS, cmd: Command) -> bytes:
    """READ RECORD ``00 B2 P1 P2``: P2 ``04`` number, ``00`` tag, ``(SFI<<3)|4`` by SFI."""
    ef = _record_target(cos, cmd.p2)
    cos.check_access(ef, ef.read, cmd)
    index = _record_index(cos, ef, cmd.p1, cmd.p2 & 0x07)
    cos.security.current_record = index
    return ef.records[index]


def update_record(cos: CardOS, cmd: Command) -> bytes:
    """UPDATE RECORD ``00/04/84 DC``: by number (mode 4) or tag (mode 0); plain or SM."""
    ef = _record_target(cos, cmd.p2)
    data = cos.check_access(ef, ef.write, cmd)
    index = _record_index(cos, ef, cmd.p1, cmd.p2 & 0x07)
    _check_record_length(ef, data)

    def apply() -> None:
        ef.records[index] = data
        cos.security.current_record = index

    cos.commit(apply)
    return b""


def append_record(cos: CardOS, cmd: Command) -> bytes:
    """APPEND RECORD ``00 E2 00 P2``: P2 = SFI<<3 (or 00, current EF)."""
    if cmd.p1 or cmd.p2 & 0x07:
        raise errors.WrongParameters()
    ef = _record_target(cos, cmd.p2)
    data = cos.check_access(ef, ef.write, cmd)
    _check_record_length(ef, data)
    full = ef.max_records and len(ef.records) >= ef.max_records
    if full and ef.structure is not RecordStructure.CYCLIC:
        raise errors.NotEnoughMemory()

    def apply() -> None:
        ef.append(data)
        cos.security.current_record = 0 if ef.structure is RecordStructure.CYCLIC else None

    cos.commit(apply)
    return b""


def _check_record_length(ef: RecordFile, data: bytes) -> None:
    if not data:
        raise errors.WrongLength()
    if ef.structure is RecordStructure.LINEAR_VARIABLE:
        if ef.record_size and len(data) > ef.record_size:
            raise errors.WrongLength()
    elif ef.record_size and len(data) != ef.record_size:
        raise errors.WrongLength()


# ------------------------------------------------------------------ PIN


def _is_bcd_pin(pin: bytes) -> bool:
    """2-8 bytes of BCD digits, the last nibble may be the F filler (reference §C3.8)."""
    if not 2 <= len(pin) <= 8:
        return False
    digits = pin.hex().upper()
    if digits.endswith("F"):
        digits = digits[:-1]
    return digits.isdigit() and len(digits) >= 4


def _the_pin(cos: CardOS) -> tuple[DedicatedFile, Pin]:
    found = cos.current_df.find_pin()
    if found is None:
        raise errors.KeyNotFound()
    return found


def _check_pin(cos: CardOS, df: DedicatedFile, pin: Pin, candidate: bytes) -> None:
    """Compare under the try counter. The counter is decremented (committed) *before*
    comparing, so tearing the card after a wrong guess never saves a try."""
    if pin.blocked:
        raise errors.PinBlocked()
    left = pin.tries - 1

    def spend() -> None:
        pin.tries = left

    cos.commit(spend)
    if not hmac.compare_digest(candidate, pin.value):
        raise errors.PinIncorrect(left)

    def restore() -> None:
        pin.tries = pin.max_tries

    cos.commit(restore)


def verify(cos: CardOS, cmd: Command) -> bytes:
    """VERIFY ``00 20 00 00 Lc PIN-BCD`` (P2 = 00); no data = ask the try counter (63Cx)."""
    if cmd.p1 or cmd.p2:
        raise errors.WrongParameters()
    df, pin = _the_pin(cos)
    if not cmd.data:
        if pin.blocked:
            raise errors.PinBlocked()
        if df in cos.security.pins:
            return b""
        raise errors.PinIncorrect(pin.tries)
    if not _is_bcd_pin(cmd.data):
        raise errors.WrongLength()
    _check_pin(cos, df, pin, cmd.data)
    cos.security.pins.add(df)
    cos.security.pin_initial = pin.initial is not None and hmac.compare_digest(
        cmd.data, pin.initial
    )
    return b""


def change_pin(cos: CardOS, cmd: Command) -> bytes:
    """CHANGE PIN ``80 5E 01 00 Lc old‖FF‖new`` (reference §C2, PINC).

    Profile choice: changing back to the issuer's initial PIN is refused with 6985
    (the interface's -36 "cannot change back to the initial PIN"); the old PIN
    was right, so its try counter is reset and it counts as verified.
    """
    if cmd.p1 != 0x01 or cmd.p2:
        raise errors.WrongParameters()
    old, sep, new = cmd.data.partition(b"\xff")
    if not sep or not _is_bcd_pin(old) or not _is_bcd_pin(new):
        raise errors.WrongData()
    df, pin = _the_pin(cos)
    _check_pin(cos, df, pin, old)
    cos.security.pins.add(df)
    if pin.initial is not None and hmac.compare_digest(new, pin.initial):
        raise errors.ConditionsNotSatisfied()

    def apply() -> None:
        pin.value = new

    cos.commit(apply)
    cos.security.pin_initial = False
    return b""


def pin_5e(cos: CardOS, cmd: Command) -> bytes:
    """``80 5E``: P1 01 CHANGE PIN; P1 00 RELOAD PIN (profile: new PIN ‖ MAC4, IV 0)."""
    if cmd.p1 == 0x00:
        return reload_pin(cos, cmd)
    return change_pin(cos, cmd)


def reload_pin(cos: CardOS, cmd: Command) -> bytes:
    """RELOAD PIN ``80 5E 00 00 Lc newPIN ‖ MAC4`` (profile): MAC over the new PIN with
    the PIN-reload key, IV = 0, PBOC ED/EP practice; resets the try counter."""
    from sscard.crypto.ssse import sm_mac

    if cmd.p2:
        raise errors.WrongParameters()
    new, mac = cmd.data[:-4], cmd.data[-4:]
    if not _is_bcd_pin(new):
        raise errors.WrongLength()
    df, pin = _the_pin(cos)
    key = next((k for k in _keys_on_path(df) if k.usage & KeyUse.PIN_RELOAD), None)
    if key is None:
        raise errors.KeyNotFound()
    block = 16 if key.algorithm == 0x03 else 8
    if not hmac.compare_digest(sm_mac(key.value, bytes(block), new, key.algorithm), mac):
        raise errors.MacInvalid()

    def apply() -> None:
        pin.value = new
        pin.tries = pin.max_tries

    cos.commit(apply)
    return b""


def unblock_pin(cos: CardOS, cmd: Command) -> bytes:
    """UNBLOCK PIN ``84 24 00 00 04 MAC4`` (profile): MAC with PUK, IV = card challenge."""
    if cmd.p1 or cmd.p2:
        raise errors.WrongParameters()
    df, pin = _the_pin(cos)
    key = next((k for k in _keys_on_path(df) if k.usage & KeyUse.PIN_UNBLOCK), None)
    if key is None:
        raise errors.KeyNotFound()
    cos.unwrap_sm(cmd, df, key.key_id, KeyUse.PIN_UNBLOCK)

    def apply() -> None:
        pin.tries = pin.max_tries

    cos.commit(apply)
    return b""


def _keys_on_path(df: DedicatedFile) -> list[Key]:
    return [k for d in df.ancestry() for k in d.keys.values()]


# ------------------------------------------------------------------ challenge, authentication


def get_challenge(cos: CardOS, cmd: Command) -> bytes:
    """GET CHALLENGE ``00 84 00 00 Le``; Le 04, 08 or 10 (reference §C2)."""
    if cmd.p1 or cmd.p2:
        raise errors.WrongParameters()
    if cmd.data or cmd.le not in (4, 8, 16):
        raise errors.WrongLength()
    challenge = cos.rng(cmd.le)
    cos.security.challenge = challenge
    return challenge


def internal_authenticate(cos: CardOS, cmd: Command) -> bytes:
    """INTERNAL AUTHENTICATE ``00 88 00 kid 10 P8‖S8 [ver]`` -> 8 B (§C3.4; SM4 per profile)."""
    from sscard.crypto.ssse import internal_auth

    if cmd.p1:
        raise errors.WrongParameters()
    if len(cmd.data) not in (16, 17):
        raise errors.WrongLength()
    key = cos.current_df.find_key(cmd.p2)
    if key is None or not key.usage & KeyUse.INTERNAL_AUTH:
        raise errors.KeyNotFound()
    return internal_auth(key.value, cmd.data[:8], cmd.data[8:16], key.algorithm)


def external_authenticate(cos: CardOS, cmd: Command) -> bytes:
    """EXTERNAL AUTHENTICATE ``00 82 00 kid 10 E8‖S8`` against the last challenge
    (single use; §C3.5, SM4 per profile). 63Cx on failure, 6983 once locked.

    A 4-byte challenge is extended with 00 to 8 bytes (PBOC practice); a 16-byte
    one contributes its first 8 bytes.
    """
    from sscard.crypto.ssse import external_auth

    if cmd.p1:
        raise errors.WrongParameters()
    if len(cmd.data) != 16:
        raise errors.WrongLength()
    df = cos.current_df
    key = df.find_key(cmd.p2)
    if key is None or not key.usage & KeyUse.EXTERNAL_AUTH:
        raise errors.KeyNotFound()
    if key.blocked:
        raise errors.AuthMethodBlocked()
    challenge = cos.take_challenge()
    if challenge is None:
        raise errors.ReferenceDataInvalid()
    r8 = (challenge + bytes(8))[:8]
    expected = external_auth(key.value, r8, cmd.data[8:], key.algorithm)
    left = key.tries - 1

    def spend() -> None:
        key.tries = left

    cos.commit(spend)
    if not hmac.compare_digest(expected, cmd.data[:8]):
        raise errors.AuthenticationFailed(left)

    def restore() -> None:
        key.tries = key.max_tries

    cos.commit(restore)
    owner = next((d for d in df.ancestry() if d.keys.get(cmd.p2) is key), df)
    cos.security.keys.add((owner, key))
    return b""


INSTRUCTIONS: dict[tuple[int, int], Handler] = {
    (CLA_ISO, Ins.SELECT): select,
    (CLA_ISO, Ins.READ_BINARY): read_binary,
    (CLA_ISO, Ins.READ_RECORD): read_record,
    (CLA_ISO, Ins.UPDATE_BINARY): update_binary,
    (0x04, Ins.UPDATE_BINARY): update_binary,
    (0x84, Ins.UPDATE_BINARY): update_binary,
    (CLA_ISO, Ins.UPDATE_RECORD): update_record,
    (0x04, Ins.UPDATE_RECORD): update_record,
    (0x84, Ins.UPDATE_CAPP_DATA_CACHE): update_record,
    (CLA_ISO, Ins.APPEND_RECORD): append_record,
    (CLA_ISO, Ins.VERIFY): verify,
    (CLA_PROPRIETARY, Ins.CHANGE_PIN): pin_5e,
    (0x84, Ins.UNBLOCK_PIN): unblock_pin,
    (CLA_ISO, Ins.GET_CHALLENGE): get_challenge,
    (CLA_ISO, Ins.INTERNAL_AUTHENTICATE): internal_authenticate,
    (CLA_ISO, Ins.EXTERNAL_AUTHENTICATE): external_authenticate,
}
