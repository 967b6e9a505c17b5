"""pytest plugin shipped with sscard: fixtures for tests that embed or test with the SDK.

Installed with the package (entry point ``pytest11``), so a validator vendor's or
a HIS integrator's test suite gets, without writing the wiring again:

* ``sscard_keys`` - the simulator's TEST key set (never a production key);
* ``sscard_card`` - a factory: ``sscard_card("zhejiang", generation=3, balance=...)``
  gives a :class:`SimCard` (the card image, the simulated card and ``connect()``);
* ``sscard_psam`` - a factory: ``sscard_psam(terminal_id="000000000001")`` gives an
  opened :class:`~sscard.applets.transit.Psam` on a simulated PSAM;
* ``sscard_validator`` - a factory: ``sscard_validator(mode="flat", fare=200, ...)``
  gives a :class:`~sscard.applets.transit.Validator` with its own PSAM and a real
  SQLite journal in the test's temporary directory;
* ``sscard_insurance`` - the simulated insurance platform, a real HTTP server on an
  ephemeral loopback port (``.url``, ``.enrol_card(profile)``), ledger in tmp;
* ``sscard_desk`` - a factory: ``sscard_desk()`` gives a medical
  :class:`~sscard.applets.medical.FrontDesk` talking to ``sscard_insurance``, with
  its outbox in tmp, and ``sscard_desk.read(sim_card)`` reads the card as a desk does;
* ``sscard_pcscd`` (session) and ``sscard_reader`` / ``sscard_reader2`` - a private
  pcscd with the vsmartcard-vpcd driver and one of its two virtual slots
  (``.insert(card)``, ``.eject()``, ``.name``): the simulated card as a real PC/SC
  reader. Skipped, with the reason and the command that fixes it, where pcscd,
  the vpcd driver or pyscard is missing or another pcscd runs.

Imports are lazy: loading the plugin costs nothing in suites that use none of it.
See docs/sdk.md ("Testing with sscard").
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sscard.applets.transit import Psam, Validator
    from sscard.simulators.base import SimulatedCard
    from sscard.simulators.insurance_platform import InsurancePlatform
    from sscard.simulators.keys import KeySet
    from sscard.simulators.pcscd import PrivatePcscd
    from sscard.simulators.profile import CardProfile
    from sscard.terminals import Connection

#: The private pcscd's reader names are "<FRIENDLY_NAME> 00 00" and "... 00 01".
FRIENDLY_NAME = "sscard test VPCD"
#: vpcd's port pair for the private pcscd (a free pair is chosen from here).
CHANNEL_ID = 0x9C40
#: How long pcscd may take to notice a card inserted into or removed from a slot.
INSERT_TIMEOUT = 10.0


@dataclass
class SimCard:
    """A simulated card: its image (``profile``), the card itself and a way to talk to it."""

    profile: CardProfile
    card: SimulatedCard
    _opened: list[Connection]

    def connect(self) -> Connection:
        """A connected :class:`~sscard.terminals.Connection` in an in-process slot."""
        from sscard.terminals import Connection, SimulatorTransport

        conn = Connection(SimulatorTransport(self.card)).connect()
        self._opened.append(conn)
        return conn


@pytest.fixture
def sscard_keys() -> KeySet:
    """The simulator's TEST key set (sscard/data/test-keys.json)."""
    from sscard.simulators.keys import default_key_set

    return default_key_set()


@pytest.fixture
def sscard_card(sscard_keys: KeySet) -> Iterator[Callable[..., SimCard]]:
    """Factory: ``sscard_card(province="zhejiang", generation=3, **new_card_options)``."""
    from sscard.simulators.card import build_card
    from sscard.simulators.profile import new_card

    opened: list[Connection] = []

    def make(province: str = "zhejiang", generation: int = 3, **options: Any) -> SimCard:
        options.setdefault("seed", 1)
        profile = new_card(province, generation, **options)
        return SimCard(profile, build_card(profile, sscard_keys), opened)

    yield make
    for conn in opened:
        conn.close()


@pytest.fixture
def sscard_psam(sscard_keys: KeySet) -> Iterator[Callable[..., Psam]]:
    """Factory: ``sscard_psam(terminal_id="000000000001")`` -> an opened PSAM."""
    from sscard.applets.transit import Psam
    from sscard.simulators.psam import new_psam, psam_card
    from sscard.terminals import Connection, SimulatorTransport

    opened: list[Connection] = []

    def make(terminal_id: str = "000000000001") -> Psam:
        card = psam_card(new_psam(bytes.fromhex(terminal_id), keys=sscard_keys))
        conn = Connection(SimulatorTransport(card)).connect()
        opened.append(conn)
        return Psam(conn).open()

    yield make
    for conn in opened:
        conn.close()


@pytest.fixture
def sscard_validator(
    tmp_path: Path, sscard_psam: Callable[..., Psam]
) -> Iterator[Callable[..., Validator]]:
    """Factory: ``sscard_validator(mode="flat", fare=200, **config)`` with its own PSAM
    (``terminal_id``, default ``000000000001``) and a journal in ``tmp_path``."""
    from sscard.applets.transit import Validator, ValidatorConfig
    from sscard.services.journal import Journal

    made: list[Validator] = []

    def make(terminal_id: str = "000000000001", **config: Any) -> Validator:
        journal_path = tmp_path / f"journal-{terminal_id}-{len(made)}.db"
        config.setdefault("journal_path", journal_path)
        config.setdefault("psam_terminal_id", bytes.fromhex(terminal_id))  # its own PSAM
        cfg = ValidatorConfig(terminal_id=terminal_id, **config)
        validator = Validator(cfg, sscard_psam(terminal_id), journal=Journal(cfg.journal_path))
        made.append(validator)
        return validator

    yield make
    for validator in made:
        validator.close()


@pytest.fixture
def sscard_insurance(tmp_path: Path) -> Iterator[InsurancePlatform]:
    """The simulated insurance platform on ``127.0.0.1``, an ephemeral port; ``.url``."""
    from sscard.simulators.insurance_platform import InsurancePlatform

    with InsurancePlatform(tmp_path / "insurance-ledger.db") as platform:
        yield platform


class DeskFactory:
    """``sscard_desk()``: a front desk on the simulated platform; ``.read(card)``."""

    def __init__(self, platform: InsurancePlatform, tmp_path: Path, keys: KeySet) -> None:
        self.platform, self.tmp_path, self.keys = platform, tmp_path, keys
        self._desks: list[Any] = []

    def __call__(
        self, fixmedins: str = "H31010400001", admdvs: str = "310000", **desk_options: Any
    ) -> Any:
        from sscard.applets.medical import FrontDesk
        from sscard.services.insurance import ClientConfig, InsuranceClient
        from sscard.services.insurance.filing import PlatformFilingCheck

        config = ClientConfig(self.platform.url, fixmedins, "sscard test clinic", admdvs)
        outbox = self.tmp_path / f"outbox-{len(self._desks)}.db"
        client = InsuranceClient(config, outbox)
        desk_options.setdefault("filing_check", PlatformFilingCheck(client))
        desk = FrontDesk(client, **desk_options)
        self._desks.append(desk)
        return desk

    def read(self, card: SimCard, pin: str | None = None) -> Any:
        """Read the card's identity as the desk does (TEST keys for authentication)."""
        from sscard.applets.keyprovider import SoftwareKeyProvider
        from sscard.applets.medical import read_identity

        return read_identity(card.connect(), SoftwareKeyProvider(self.keys), pin=pin)

    def close(self) -> None:
        for desk in self._desks:
            desk.client.close()


@pytest.fixture
def sscard_desk(
    sscard_insurance: InsurancePlatform, tmp_path: Path, sscard_keys: KeySet
) -> Iterator[DeskFactory]:
    """Factory: ``sscard_desk()`` -> a FrontDesk on ``sscard_insurance``; ``.read(card)``."""
    factory = DeskFactory(sscard_insurance, tmp_path, sscard_keys)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def sscard_pcscd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivatePcscd]:
    """A private pcscd with two vsmartcard-vpcd slots, for the whole session."""
    from sscard.simulators.pcscd import PcscdError, PrivatePcscd, why_not_private

    try:
        import smartcard.scard  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"PC/SC END-TO-END TESTS SKIPPED: pyscard not importable ({exc})")
    reason = why_not_private()
    if reason:
        pytest.skip(f"PC/SC END-TO-END TESTS SKIPPED: {reason}")
    daemon = PrivatePcscd(
        friendly_name=FRIENDLY_NAME,
        channel_id=CHANNEL_ID,
        workdir=tmp_path_factory.mktemp("pcscd"),
    )
    try:
        daemon.start()
    except PcscdError as exc:
        pytest.skip(f"PC/SC END-TO-END TESTS SKIPPED: {exc}")
    yield daemon
    daemon.close()


class VirtualReader:
    """One vpcd slot of the private pcscd, with waits on what pcscd sees."""

    def __init__(self, daemon: PrivatePcscd, slot: int) -> None:
        from sscard.simulators.vpcd import VpcdBridge

        self.daemon = daemon
        self.name = daemon.reader_names[slot]
        self.bridge = VpcdBridge(port=daemon.ports[slot]).start()

    def insert(self, card: SimulatedCard, *, wait: bool = True) -> None:
        """Put ``card`` in the slot; wait until pcscd reports it present."""
        from sscard.terminals.pcsc import wait_for_card

        self.bridge.insert(card)
        if wait and not wait_for_card(self.name, present=True, timeout=INSERT_TIMEOUT):
            raise AssertionError(f"pcscd did not see the card in {self.name}")

    def eject(self, *, wait: bool = True) -> None:
        """Take the card out; wait until pcscd reports the slot empty."""
        from sscard.terminals.pcsc import wait_for_card

        self.bridge.eject()
        if wait and not wait_for_card(self.name, present=False, timeout=INSERT_TIMEOUT):
            raise AssertionError(f"pcscd did not see the removal from {self.name}")

    def close(self) -> None:
        card_was_in = self.bridge.card is not None
        self.bridge.stop()
        if card_was_in and self.daemon.is_running():
            from sscard.terminals.pcsc import wait_for_card

            wait_for_card(self.name, present=False, timeout=INSERT_TIMEOUT)


@pytest.fixture
def sscard_reader(sscard_pcscd: PrivatePcscd) -> Iterator[VirtualReader]:
    """Slot 0 of the private pcscd ("sscard test VPCD 00 00"), empty at start and end."""
    reader = VirtualReader(sscard_pcscd, 0)
    yield reader
    reader.close()


@pytest.fixture
def sscard_reader2(sscard_pcscd: PrivatePcscd) -> Iterator[VirtualReader]:
    """Slot 1 ("sscard test VPCD 00 01"), e.g. the validator's PSAM."""
    reader = VirtualReader(sscard_pcscd, 1)
    yield reader
    reader.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pcsc: end-to-end test through a private pcscd with the vsmartcard-vpcd driver"
    )
