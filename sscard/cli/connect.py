"""From CLI options to a connected ``Connection``: simulator or PC/SC, plus tracer.

``--sim card.json`` -> in-process ``SimulatorTransport`` over the card the
simulated-card loader builds; otherwise ``PcscTransport`` with ``-r/--reader``
(or ``SSCARD_READER``). ``--trace FILE`` attaches a ``Tracer`` (redacted unless
``--no-redact``). It lives in the CLI layer, the only place that knows both the
terminals and the simulators; the card loader stays a hook so tests can plug in
another simulated card.
"""

from __future__ import annotations

from collections.abc import Callable

from sscard.cli.common import CliOptions
from sscard.simulators.base import EchoCard, SimulatedCard
from sscard.terminals.base import Transport
from sscard.terminals.connection import Connection
from sscard.terminals.tracing import Tracer

SimCardLoader = Callable[[str], SimulatedCard]

_sim_loader: SimCardLoader | None = None


def set_sim_loader(loader: SimCardLoader | None) -> None:
    """Register how ``--sim PATH`` (and ``sscard sim serve PATH``) builds a card."""
    global _sim_loader
    _sim_loader = loader


def load_sim_card(path: str) -> SimulatedCard:
    """Build the simulated card for ``path``; ``"echo"`` is the built-in EchoCard.

    A card image (``sscard-card/1``) gives the social security card, a PSAM image
    (``sscard-psam/1``) the PSAM, so ``sscard sim serve`` can put either in a vpcd
    slot (card on the contactless reader, PSAM in the SAM slot). Both are file-backed:
    committed changes (balance, records, the PSAM sequence number) are saved.
    Errors (missing file, bad image) are the loader's typed ``ProfileError``.
    """
    if path == "echo":
        return EchoCard()
    if _sim_loader is not None:
        return _sim_loader(path)
    # Default: the file-backed simulated social security card (card image JSON,
    # shipped TEST keys); imported lazily so the terminal layer does not need it.
    from sscard.simulators.card import load_card
    from sscard.simulators.profile import SchemaMismatch
    from sscard.simulators.psam import PSAM_SCHEMA, PsamImage, psam_card

    try:
        return load_card(path)
    except SchemaMismatch as exc:
        if exc.found != PSAM_SCHEMA:
            raise
    return psam_card(PsamImage.load(path), path=path)


def open_transport(opts: CliOptions) -> Transport:
    if opts.sim:
        from sscard.terminals.simulator import SimulatorTransport

        return SimulatorTransport(load_sim_card(opts.sim), name=f"sim:{opts.sim}")
    from sscard.terminals.pcsc import PcscTransport

    return PcscTransport(opts.reader)


def open_connection(opts: CliOptions, *, strict: bool = False) -> Connection:
    """A connected Connection for the CLI options (caller closes it)."""
    transport = open_transport(opts)
    tracer = Tracer(opts.trace, redact=opts.redact) if opts.trace else None
    connection = Connection(transport, strict=strict, tracer=tracer)
    try:
        connection.connect()
    except BaseException:
        connection.close()
        raise
    return connection
