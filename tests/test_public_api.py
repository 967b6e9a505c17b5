"""The public API: every public package declares ``__all__`` and every name in
it resolves; the main entry points are importable from one obvious place each."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = [
    "sscard.terminals",
    "sscard.simulators",
    "sscard.services",
    "sscard.services.insurance",
    "sscard.applets",
    "sscard.applets.transit",
    "sscard.applets.identity",
    "sscard.applets.medical",
]


@pytest.mark.parametrize("name", PUBLIC)
def test_every_exported_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(set(exported), key=exported.index) and exported
    for attr in exported:
        assert getattr(module, attr) is not None, f"{name}.{attr}"


def test_the_entry_points_a_vendor_needs_are_one_import_away() -> None:
    from sscard.applets import FrontDesk, IdentityCheck, Validator, ValidatorConfig
    from sscard.services import Journal
    from sscard.simulators import build_card, new_card, new_psam
    from sscard.terminals import Connection, PcscTransport, SimulatorTransport, Transport

    assert issubclass(PcscTransport, Transport) and issubclass(SimulatorTransport, Transport)
    assert all((FrontDesk, IdentityCheck, Validator, ValidatorConfig, Journal, Connection))
    assert new_psam("000000000071").terminal_id == bytes.fromhex("000000000071")
    assert build_card(new_card("anhui", seed=1)) is not None


def test_importing_the_terminal_layer_does_not_need_pyscard() -> None:
    code = "import sys, sscard.terminals, sscard.simulators; print('smartcard' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "False"
