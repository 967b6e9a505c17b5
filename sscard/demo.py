"""``make demo``: the main job of sscard, end to end, on the simulator.

Each section is one scene of the delta one-card pass; a scene whose parts are
not available on this machine (e.g. no pcscd) says so and the tour goes on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime

from sscard.apdu import Command, Response
from sscard.apdu.catalog import CLA_ISO, Ins
from sscard.apdu.codec import bcd_datetime
from sscard.crypto import default_backend, purse, sm3

Scene = Callable[[], None]


def _title(text: str) -> None:
    print(f"\n=== {text} ===")


def scene_codec() -> None:
    """The wire codec: a T-Union SELECT and two status words."""
    _title("APDU codec / APDU 编解码")
    cmd = Command(CLA_ISO, Ins.SELECT, 0x04, 0x00, bytes.fromhex("A000000632010105"), le=256)
    print(f"command : {cmd!r}")
    print(f"bytes   : {bytes(cmd).hex().upper()}")
    for raw in ("6A82", "63C2", "9401"):
        print(f"SW {raw}  : {Response.parse(bytes.fromhex(raw)).text}")


def scene_crypto() -> None:
    """Purse MACs from the published load vector, SM3, SM2 backend."""
    _title("Crypto core / 密码算法")
    dlk = bytes.fromhex("11223344556677888877665544332211")  # published TEST vector key
    sk = purse.load_session_key(
        dlk, card_random=bytes.fromhex("11223344"), online_counter=0, algorithm=purse.Algorithm.TDES
    )
    mac2 = purse.load_mac2(
        sk,
        amount=0x1000,
        txn_type=0x01,
        terminal_id=bytes.fromhex("001122334455"),
        date_time=bcd_datetime(datetime(2011, 12, 21, 21, 48, 22)),
        algorithm=purse.Algorithm.TDES,
    )
    print(f"load session key (vector)  : {sk.hex().upper()}  (published 9B1D924E05595603)")
    print(f"load MAC2 (vector)         : {mac2.hex().upper()}  (published 3A845BF0)")
    print(f"SM3('abc')                 : {sm3(b'abc').hex()[:32]}...")
    print(f"SM2 backend                : {default_backend().name}")


SCENES: list[Scene] = [scene_codec, scene_crypto]

#: Card scenes, in the order of the tour (modules under sscard.demos, each
#: with ``run(stage)`` that prints its own title): a card of each province,
#: metro entry/exit and a bus tap, hotel / museum gate / counterfeit, and a
#: cross-province clinic settlement.
CARD_SCENES = ["cards", "transit", "identity", "medical", "serve"]


def main() -> int:
    import importlib

    from sscard.demos.stage import open_stage

    print("sscard demo: the Yangtze River Delta one-card pass on the simulator")
    failed = 0
    for scene in SCENES:
        try:
            scene()
        except Exception as exc:  # a broken scene is reported, the tour goes on
            failed += 1
            print(f"!! scene {scene.__name__} failed: {exc}", file=sys.stderr)
    with open_stage() as stage:
        where = (
            "through pcscd + vsmartcard-vpcd (PC/SC)"
            if stage.via == "pcscd"
            else f"in-process ({stage.reason})"
        )
        print(f"\nCards are served {where}.")
        for name in CARD_SCENES:
            print()
            try:
                importlib.import_module(f"sscard.demos.{name}").run(stage)
            except Exception as exc:  # a broken scene is reported, the tour goes on
                failed += 1
                print(f"!! scene {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    print("\ndemo finished" + (f" with {failed} failed scene(s)" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
