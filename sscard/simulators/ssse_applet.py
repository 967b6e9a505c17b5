"""The social security system environment (SSSE) of a simulated card, on the card OS.

Builds the DDF ``sx1.sh.社会保障`` (reference §C1.1) with EF05 / EF06 as linear
variable record files of simple-TLV records (§C1.3-1.5; records come from the
:mod:`sscard.cards.ssse` layouts, never re-declared here), DF01-DF07 with opaque
records (profile), the PIN (§C3.8) and the card keys derived from the key set's
masters with the profile diversification (two levels from the card identification
code; ``sscard.crypto.ssse.card_key``).

sscard profile choices made here (the public specs are silent):

* the SSSE DDF also answers to FID ``DDF1`` (SSSE32 code calls it "DDF1"), so
  path selection ``00 A4 08 00 04 DDF1 EF05`` works; DF01-DF07 are DFs ``DF01``..
  ``DF07`` under it, named by their AIDs ``D156000005 00..06``;
* key IDs: IRK ``00``, STK ``01``, UK ``04``, PUK ``06``, RKSSSE ``0A`` (RKSSSE on
  3rd-generation cards only);
* access: EF05 read free; EF06 read free on 2nd gen, external authentication with
  RKSSSE on 3rd gen (§C1.5); EF05 write = secure messaging with STK, EF06 and DF01-07
  write = secure messaging with UK; DF01-07 read = PIN;
* a counterfeit card gets an IRK derived from the bit-inverted IRK master (right
  data, wrong key: internal authentication fails).
"""

from __future__ import annotations

import dataclasses

from sscard.apdu.codec import from_bcd, to_bcd
from sscard.apdu.errors import TlvError
from sscard.apdu.tlv import Tlv, simple_tlv_decode, simple_tlv_encode
from sscard.cards.ids import (
    EF05_FID,
    EF05_SFI,
    EF06_FID,
    EF06_SFI,
    SSSE_DDF_NAME,
    AppDf,
    SsseKeyId,
)
from sscard.cards.layout import LayoutError
from sscard.cards.ssse import Ef05, Ef06, SsseFci
from sscard.simulators.cos import (
    FREE,
    PIN,
    Access,
    Applet,
    CardOS,
    DedicatedFile,
    Key,
    KeyUse,
    Pin,
    RecordFile,
    RecordStructure,
)
from sscard.simulators.keys import KeySet
from sscard.simulators.profile import SsseProfile

#: Profile: the FID the SSSE DDF answers to (path selection).
SSSE_DDF_FID = 0xDDF1
#: Profile: the maintenance key (secure messaging on EF05, RELOAD PIN).
STK_KEY_ID = 0x01

#: name -> (key ID, usage) of the SSSE keys (reference §C3.2).
KEY_TABLE: dict[str, tuple[int, KeyUse]] = {
    "IRK": (SsseKeyId.IRK, KeyUse.INTERNAL_AUTH),
    "STK": (STK_KEY_ID, KeyUse.MAC | KeyUse.PIN_RELOAD),
    "UK": (SsseKeyId.UK_EF06, KeyUse.EXTERNAL_AUTH | KeyUse.MAC),
    "PUK": (SsseKeyId.PUK, KeyUse.EXTERNAL_AUTH | KeyUse.PIN_UNBLOCK),
    "RKSSSE": (SsseKeyId.RKSSSE, KeyUse.EXTERNAL_AUTH),
}


class SsseApplet(Applet):
    """SELECT answer of the SSSE DDF: ``6F 84 name A5 (9F0C 03 86 01 aa)`` (§C3.1)."""

    def __init__(self, algorithm: int) -> None:
        self.algorithm = algorithm
        self._fci = SsseFci(algorithm=algorithm, df_name=SSSE_DDF_NAME).encode()

    def select_response(self, cos: CardOS, df: DedicatedFile) -> bytes | None:
        return self._fci


def ssse_keys(profile: SsseProfile, keys: KeySet, *, counterfeit: bool = False) -> dict[int, Key]:
    """The card's SSSE keys, derived from the masters (profile diversification)."""
    card_id = profile.ef05.card_id.encode()
    flag = profile.algorithm_flag
    family = "sm4" if flag == 0x03 else "3des"
    out: dict[int, Key] = {}
    for name, (kid, usage) in KEY_TABLE.items():
        if name == "RKSSSE" and profile.generation < 3:
            continue
        if name == "IRK" and counterfeit:
            from sscard.crypto.ssse import card_key

            master = bytes(b ^ 0xFF for b in keys.ssse.master("IRK", family))
            value = card_key(master, card_id, flag)
        else:
            value = keys.ssse_card_key(name, card_id, flag)
        tries = profile.ext_auth_tries_left if usage & KeyUse.EXTERNAL_AUTH else 3
        out[kid] = Key(kid, value, flag, usage, max_tries=3, tries=tries, name=name)
    return out


def _record_file(fid: int, sfi: int | None, records: dict[int, bytes], read: Access,
                 write: Access, name: str) -> RecordFile:  # fmt: skip
    ordered = [records[n] for n in sorted(records)]
    return RecordFile(
        fid=fid, sfi=sfi, read=read, write=write, name=name,
        structure=RecordStructure.LINEAR_VARIABLE, records=ordered, record_size=0xFF,
    )  # fmt: skip


def build_ssse(
    profile: SsseProfile,
    keys: KeySet,
    *,
    df01: dict[str, dict[int, bytes]] | None = None,
    counterfeit: bool = False,
) -> DedicatedFile:
    """The SSSE DDF with EF05, EF06, DF01-DF07, the PIN and the keys."""
    flag = profile.algorithm_flag
    key_map = ssse_keys(profile, keys, counterfeit=counterfeit)
    pin = profile.pin
    pin_bcd = to_bcd(pin.pin)
    ddf = DedicatedFile(
        fid=SSSE_DDF_FID,
        name=SSSE_DDF_NAME,
        keys=key_map,
        pin=Pin(
            pin_bcd,
            max_tries=pin.max_tries,
            tries=pin.tries_left,
            initial=pin_bcd if pin.initial else None,
        ),
        applet=SsseApplet(flag),
        algorithm=flag,
        proprietary=Tlv(0x9F0C, Tlv(0x86, bytes([flag])).encode()).encode(),
        blocked=profile.state == "blocked",
        label_text="SSSE",
    )
    ef06_read = Access.auth(SsseKeyId.RKSSSE) if profile.generation >= 3 else FREE
    ddf.add(_record_file(EF05_FID, EF05_SFI, profile.ef05.records(), FREE,
                         Access.mac(STK_KEY_ID), "EF05"))  # fmt: skip
    ddf.add(_record_file(EF06_FID, EF06_SFI, profile.ef06.records(), ef06_read,
                         Access.mac(SsseKeyId.UK_EF06), "EF06"))  # fmt: skip
    for app in AppDf:
        df = DedicatedFile(
            fid=0xDF00 + app.df_number, name=app.aid, algorithm=flag,
            label_text=f"DF{app.df_number:02d}",
        )  # fmt: skip
        if app is AppDf.DF01_PUBLIC:
            for ef_name, recs in sorted((df01 or {}).items()):
                fid = _ef_fid(ef_name)
                if fid is None:
                    continue
                tlvs = {n: simple_tlv_encode(n, v) for n, v in recs.items()}
                sfi = fid & 0xFF if (fid & 0xFF) <= 30 else None
                df.add(_record_file(fid, sfi, tlvs, PIN, Access.mac(SsseKeyId.UK_EF06), ef_name))
        ddf.add(df)
    return ddf


def _ef_fid(name: str) -> int | None:
    """``"EF05"`` -> 0xEF05; anything else is skipped (the image is user-editable)."""
    try:
        fid = int(name[2:], 16) | 0xEF00 if name[:2].upper() == "EF" and len(name) == 4 else None
    except ValueError:
        return None
    return fid


def read_back(
    ddf: DedicatedFile, profile: SsseProfile
) -> tuple[SsseProfile, dict[str, dict[int, bytes]]]:
    """The SSSE profile after the card changed it (PIN, tries, records), for saving.

    Records that no longer decode with the :mod:`sscard.cards.ssse` layouts (a
    terminal wrote garbage through secure messaging) keep their previous value in
    the image; the running card keeps what was written.
    """
    pin = ddf.pin
    new_pin = profile.pin
    if pin is not None:
        new_pin = dataclasses.replace(
            profile.pin,
            pin=from_bcd(pin.value),
            tries_left=pin.tries,
            initial=pin.initial is not None and pin.value == pin.initial,
        )
    ext = [k.tries for k in ddf.keys.values() if k.usage & KeyUse.EXTERNAL_AUTH]
    ef05, ef06 = profile.ef05, profile.ef06
    for fid, cls in ((EF05_FID, Ef05), (EF06_FID, Ef06)):
        ef = ddf.child_by_fid(fid)
        if not isinstance(ef, RecordFile):
            continue
        try:
            by_tag = {rec[0]: rec for rec in ef.records if rec}
            decoded = cls.from_records(by_tag)
        except LayoutError:
            continue
        if cls is Ef05:
            ef05 = decoded  # type: ignore[assignment]
        else:
            ef06 = decoded  # type: ignore[assignment]
    state = profile.state
    if ddf.blocked:
        state = "blocked"
    df01: dict[str, dict[int, bytes]] = {}
    df = ddf.child_by_fid(0xDF01)
    if isinstance(df, DedicatedFile):
        for child in df.children:
            if isinstance(child, RecordFile) and child.fid is not None:
                recs: dict[int, bytes] = {}
                for i, rec in enumerate(child.records, start=1):
                    try:
                        recs[i] = simple_tlv_decode(rec)[1]
                    except TlvError:
                        recs[i] = rec
                df01[f"EF{child.fid & 0xFF:02X}"] = recs
    new = dataclasses.replace(
        profile,
        pin=new_pin,
        ext_auth_tries_left=min(ext) if ext else profile.ext_auth_tries_left,
        ef05=ef05,
        ef06=ef06,
        state=state,
    )
    return new, df01
