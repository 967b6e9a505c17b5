"""Demo scene: a Jiangsu card rides the Shanghai metro and a bus.

A card from another province (delta law Art. 11: the transport function works in all
four provinces) enters Shanghai metro line 2, exits at line 16, then takes a flat-fare
bus within the transfer window. Card in slot 0, PSAM in slot 1, through pcscd when the
host can run one (``stage.via``). Card numbers are masked.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sscard.applets.transit import (
    FarePolicy,
    FareTable,
    Psam,
    Purse,
    TapResult,
    Validator,
    ValidatorConfig,
)
from sscard.cards.cities import city as tunion_city
from sscard.cards.ids import CardCategory, Industry
from sscard.demos.stage import Stage
from sscard.simulators.card import build_card
from sscard.simulators.keys import default_key_set
from sscard.simulators.profile import new_card
from sscard.simulators.psam import new_psam, psam_card

FARES = """\
from\\to,2-5,2-10,16-17
2-5,300,400,600
2-10,400,300,500
16-17,600,500,300
"""
SHANGHAI = "2900"  # T-Union city code (GB/T 13497, reference §P5.8)
POLICY = FarePolicy({int(CardCategory.STUDENT): 50}, transfer_window_minutes=90,
                    transfer_discount=100)  # fmt: skip


def _yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


def _show(label: str, result: TapResult) -> None:
    if result.accepted:
        extra = " (transfer -1.00 / 换乘优惠)" if result.transfer else ""
        print(f"  {label:<28} fare / 票价 {_yuan(result.fare):>5}  balance / 余额 "
              f"{_yuan(result.balance)}{extra}")  # fmt: skip
    else:
        print(f"  {label:<28} REFUSED {result.code}: {result.text_en} / {result.text_zh}")


def run(stage: Stage) -> None:
    print("\n=== T-Union validator: Jiangsu card in Shanghai / 江苏卡在上海乘地铁和公交 ===")
    print(f"  (readers via {stage.via})")
    keys = default_key_set()
    clock = [datetime(2025, 3, 1, 8, 0)]
    profile = new_card("jiangsu", seed=21, balance=5_000)
    assert profile.purse is not None
    asn = profile.purse.ef0015.asn
    card = build_card(profile, keys, t0=True)
    psam_conn = stage.present(psam_card(new_psam(bytes.fromhex("310000000042"), keys=keys)), 1)
    psam = Psam(psam_conn).open()
    table = FareTable.parse(FARES)
    with tempfile.TemporaryDirectory() as tmp:

        def validator(**kw: object) -> Validator:
            cfg = ValidatorConfig(
                city_code=SHANGHAI, policy=POLICY, journal_path=Path(tmp) / "journal.db",
                **kw,  # type: ignore[arg-type]
            )  # fmt: skip
            return Validator(cfg, psam, clock=lambda: clock[0])

        metro = {"mode": "metro", "fare_table": table, "industry": int(Industry.METRO),
                 "operator": b"\x00\x02"}  # fmt: skip
        entry = validator(terminal_id="SH-M2-0205", gate="entry", line=2, station=5,
                          gate_id="G0205-03", **metro)  # fmt: skip
        exit_ = validator(terminal_id="SH-M16-1617", gate="exit", line=16, station=17,
                          gate_id="G1617-01", **metro)  # fmt: skip
        bus = validator(terminal_id="SH-BUS-71", mode="flat", fare=200, line=71,
                        industry=int(Industry.BUS), operator=b"\x00\x01")  # fmt: skip

        home = tunion_city(profile.purse.ef0015.city_code)
        print(f"  card / 卡号 {asn[:4]}…{asn[-4:]} (issuer city {profile.purse.ef0015.city_code}"
              f" {home.name if home else ''}), balance / 余额 {_yuan(profile.purse.balance)}")  # fmt: skip
        for label, v, minutes in (
            ("metro in 2-5 / 进站", entry, 0),
            ("metro out 16-17 / 出站", exit_, 38),
            ("bus 71 / 公交71路", bus, 25),
        ):
            clock[0] += timedelta(minutes=minutes)
            conn = stage.present(card, 0)
            _show(label, v.tap(conn))
            conn.close()
            stage.remove(0)
        conn = stage.present(card, 0)
        purse = Purse(conn)
        purse.select()
        print(f"  balance on card / 卡内余额 {_yuan(purse.balance())}; trips / 行程记录 "
              f"{len(purse.trips())}; journal / 交易日志 {entry.journal.stats().by_state}")  # fmt: skip
        conn.close()
        stage.remove(0)
        for v in (entry, exit_, bus):
            v.close()
    psam_conn.close()
    stage.remove(1)
