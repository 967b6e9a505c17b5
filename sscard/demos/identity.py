"""Demo scene: identity checks with the card (regulation Art. 2, 9, 12, 21).

Three moments at one Anhui terminal set: a Zhejiang holder checks in at a Hefei hotel
(card in slot 0, PSAM in slot 1 for internal authentication and the RKSSSE read of
EF06); a museum gate accepts an electronic social security card QR code once and
refuses it the second time; a counterfeit card is refused at the hotel. Output is
masked (Art. 18), and the audit log shows only masked subjects and reason codes.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from sscard.applets.ecard import EcardVerifier, TrustStore
from sscard.applets.identity import NOTES, IdentityCheck, IdentityResult
from sscard.applets.keyprovider import PsamKeyProvider
from sscard.applets.ssse import SsseReader
from sscard.demos.stage import Stage
from sscard.services.audit import AuditLog
from sscard.services.replay_cache import ReplayCache
from sscard.simulators.card import build_card
from sscard.simulators.ecard_issuer import EcardIssuer, IssuerKey
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card

HEFEI_TERMINAL = bytes.fromhex("340100000001")  # PSAM terminal number: Hefei (340100)
_MARK = {"pass": "ok ", "fail": "NO ", "skipped": " - "}


def _show(title: str, result: IdentityResult) -> None:
    verdict = "ACCEPTED / 通过" if result.accepted else "REFUSED / 拒绝"
    print(f"\n-- {title}: {verdict}")
    for c in result.checks:
        if c.status != "skipped":
            print(f"   {_MARK[c.status]} {c.check:<13} {c.message_en} / {c.message_zh}")
    for key, value in result.released_view(redact=True).items():
        print(f"   {key:<13} {value}")
    for note in result.notes:
        print(f"   !  {NOTES[note][0]} / {NOTES[note][1]}")


def run(stage: Stage) -> None:
    print("=== Identity check / 身份核验 (hotel, museum gate, counterfeit) ===")
    print(f"readers: {stage.via}")
    keys = default_key_set()
    psam = stage.present(psam_card(new_psam(HEFEI_TERMINAL, key_index=1, keys=keys)), slot=1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with AuditLog(work / "audit.sqlite3") as audit:
            provider = PsamKeyProvider(psam)
            hotel = IdentityCheck(audit=audit, terminal_id="hefei-hotel-01")

            # 1. A Zhejiang card at a hotel in Hefei (Art. 9): genuine, valid, not lost.
            zj = new_card("zhejiang", seed=2022)
            conn = stage.present(build_card(zj), slot=0)
            with conn.transaction():
                result = hotel.check_card("hotel", SsseReader(conn, provider))
            _show("Hotel check-in, Zhejiang card in Hefei / 合肥酒店入住（浙江卡）", result)
            stage.remove(0)

            # 2. A museum gate with the electronic card (Art. 2, 12): one scan, one entry.
            ah = new_card("anhui", seed=1949)
            issuer_key = IssuerKey.generate()
            payload = EcardIssuer(issuer_key).issue_for(ah).encode()
            print(f"\n   e-SSC QR payload: {payload[:24]}... ({len(payload)} chars)")
            with ReplayCache(work / "replay.sqlite3") as cache:
                verifier = EcardVerifier(
                    TrustStore({issuer_key.key_id: issuer_key.public_key}), cache
                )
                gate = IdentityCheck(audit=audit, terminal_id="museum-gate-03", verifier=verifier)
                _show("Museum gate, e-SSC QR / 博物馆闸机（电子社保卡）", gate.check_qr(payload))
                _show("Same QR code again / 同一二维码再次扫描", gate.check_qr(payload))

            # 3. A forged card at the hotel (Art. 21): internal authentication fails.
            fake = dataclasses.replace(new_card("jiangsu", seed=21), counterfeit=True)
            conn = stage.present(build_card(fake), slot=0)
            with conn.transaction():
                result = hotel.check_card("hotel", SsseReader(conn, provider))
            _show("Counterfeit card at the hotel / 伪造卡入住", result)
            stage.remove(0)

            print("\n-- Audit log (masked) / 审计日志（已脱敏）")
            for row in audit.query():
                print(
                    f"   {row.terminal_id:<15} {row.scenario:<11} {row.result:<8}"
                    f" {row.subject_name or '-':<5} {row.subject_ssn or '-':<18}"
                    f" {row.subject_card}"
                )
    stage.remove(1)
