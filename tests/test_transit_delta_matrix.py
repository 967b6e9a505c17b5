"""The delta matrix (regulation Art. 5, 17, 22): every province's card,
3DES and SM4, on a bus and through a metro entry/exit, in every province's network.

4 card provinces x 2 algorithms x 4 validator cities x (bus, metro) = 64 cells, each
checking fare, balance, the card's records (EF 0018, 1E, 1A) and the journal. Cards
come from a city other than the capital (Suzhou, Ningbo, Wuhu, a Shanghai district),
so a card is "another city" at every network but Shanghai's own: refusing a valid
card from another city or province is a defect. City codes are GB/T 13497
(reference §P5.8). In process, real card OS, PSAM and SQLite journal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_transit_support import TID, TODAY, Rig, bus, metro

from sscard.applets.transit import Purse, TapAccepted
from sscard.cards.ids import CompositeState, Industry, TripRecordType, TxnType
from sscard.services.journal import TapState
from sscard.simulators.profile import new_card

#: Card province -> issuing region (GB/T 2260) and its T-Union city code.
CARDS = {
    "shanghai": ("310104", "2900"),
    "jiangsu": ("320500", "3050"),  # Suzhou
    "zhejiang": ("330200", "3320"),  # Ningbo
    "anhui": ("340200", "3620"),  # Wuhu
}
#: Validator network -> T-Union city code (the capitals; Shanghai).
NETWORKS = {"shanghai": "2900", "nanjing": "3010", "hangzhou": "3310", "hefei": "3610"}
ALGORITHMS = {"3des": 0x00, "sm4": 0x04}
BALANCE = 10_000


def _network(city: str) -> dict[str, object]:
    return {"city_code": city, "institution_id": bytes.fromhex(f"0202{city}FFFFFFFF")}


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("province", CARDS)
@pytest.mark.parametrize("ride", ["bus", "metro"])
def test_delta_cell(tmp_path: Path, ride: str, province: str, algorithm: str, network: str) -> None:
    region, home = CARDS[province]
    city = NETWORKS[network]
    rig = Rig(tmp_path)
    profile = new_card(province, seed=13, today=TODAY, region=region, balance=BALANCE,
                       purse_algorithm=ALGORITHMS[algorithm])  # fmt: skip
    assert profile.purse is not None
    ef15 = profile.purse.ef0015
    assert ef15.city_code == home and profile.purse.ef0017.interoperable
    _, conn = rig.card(profile)

    if ride == "bus":
        r = rig.validator(bus(**_network(city))).tap(conn)
        assert isinstance(r, TapAccepted), r  # a valid card of any delta city is accepted
        fares, kinds = [200], [TripRecordType.EP_SINGLE]
    else:
        entry = rig.validator(metro("entry", 2, 5, **_network(city)))
        exit_ = rig.validator(metro("exit", 16, 17, **_network(city)))
        first = entry.tap(conn)
        assert isinstance(first, TapAccepted), first
        rig.advance(30)
        r = exit_.tap(conn)
        assert isinstance(r, TapAccepted), r
        assert r.entry_station == "2-5" and r.composite is not None
        assert (r.composite.state, r.composite.entry_city, r.composite.exit_city) == (
            CompositeState.EXITED, city, city,
        )  # fmt: skip
        fares, kinds = [0, 600], [TripRecordType.EP_ENTRY, TripRecordType.EP_EXIT]

    spent = sum(fares)
    assert (r.fare, r.balance) == (fares[-1], BALANCE - spent)
    p = Purse(conn)
    p.select()
    assert p.balance() == BALANCE - spent
    log, trips = p.transactions()[: len(fares)], p.trips()[: len(fares)]
    assert [(t.amount, t.txn_type, t.terminal_id) for t in log] == [
        (f, TxnType.CAPP_PURCHASE, TID) for f in reversed(fares)
    ]
    industry = Industry.BUS if ride == "bus" else Industry.METRO
    assert [(t.record_type, t.amount, t.industry) for t in trips] == [
        (k, f, industry) for k, f in zip(reversed(kinds), reversed(fares), strict=True)
    ]
    assert all(t.city_code == city and t.institution_id[2:4].hex() == city for t in trips)
    assert trips[0].balance == BALANCE - spent
    rows = rig.rows()
    assert [(row.state, row.amount, row.txn_type) for row in rows] == [
        (TapState.COMPLETED, f, 0x09) for f in fares
    ]
    assert rows[-1].balance_after == BALANCE - spent and rows[-1].issuer_id == ef15.issuer_id
    assert all(row.psam_terminal_id == TID and row.tac is not None for row in rows)
