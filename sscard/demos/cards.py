"""Demo scene: a front desk reads eight social security cards (reference §C1-§C4).

One generated card of each delta province (Shanghai, Jiangsu, Zhejiang, Anhui), 2nd
generation (3DES) and 3rd generation (SM4), read by ``SsseReader`` in slot 0 with a
PSAM in slot 1 as key provider (internal authentication; RKSSSE for EF06 on 3.0
cards). One masked line per card; the last line is the iReadCardBas string of the
last card, masked too.
"""

from __future__ import annotations

from sscard.applets.keyprovider import PsamKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.applets.unified import format_card_bas
from sscard.cards.privacy import mask_name, mask_ssn
from sscard.demos.stage import Stage
from sscard.errors import SscardError
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card
from sscard.text import pad

PROVINCES = ("shanghai", "jiangsu", "zhejiang", "anhui")
PLACE_WIDTH = 32
DESK_TERMINAL = bytes.fromhex("310000000042")  # PSAM terminal number of the desk


def run(stage: Stage) -> None:
    print("=== Front desk: eight social security cards / 前台读卡：八张社保卡 ===")
    print(f"readers: {stage.via}  (slot 0 card, slot 1 PSAM)")
    psam = stage.present(
        psam_card(new_psam(DESK_TERMINAL, key_index=1, keys=default_key_set())), slot=1
    )
    keys = PsamKeyProvider(psam)
    last = ""
    for i, province in enumerate(PROVINCES):
        for generation in (2, 3):
            profile = new_card(province, generation=generation, seed=500 + 10 * i + generation)
            conn = stage.present(build_card(profile), slot=0)
            try:
                read = SsseReader(conn, keys).read()
            except SscardError as exc:
                print(f"   {province:<9} gen {generation}  error {exc.code}: {exc.bilingual()}")
                continue
            finally:
                conn.close()
                stage.remove(0)
            region = read.issuer.region
            place = f"{region.name_zh} {region.name_en}" if region else read.issuer.region_code
            holder = read.holder
            who = f"{mask_name(holder.full_name)} {mask_ssn(holder.ssn)}" if holder else "-"
            genuine = "genuine ✓ 真卡" if read.genuine else "not checked 未验证"
            alg = "SM4 " if read.application.algorithm == 0x03 else "3DES"
            expiry = f"{read.issuer.expiry_date:%Y-%m-%d}" + (" EXPIRED" if read.expired else "")
            print(f"   {pad(place, PLACE_WIDTH)} gen {read.generation} {alg}  {who}  {genuine}  "
                  f"valid to / 有效期 {expiry}  ({read.apdu_count} APDUs)")  # fmt: skip
            last = format_card_bas(read, redact=True)
    psam.close()
    stage.remove(1)
    if last:
        print(f"   iReadCardBas (masked): {last}")
