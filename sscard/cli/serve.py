"""``sscard sim serve CARD_FILE``: the simulated card as a real PC/SC reader (vpcd).

Connects the card to pcscd's vsmartcard-vpcd driver (platform-notes.md §3) and
serves it in the foreground until Ctrl-C, reconnecting when pcscd restarts.
Slot 0 is port 35963 ("Virtual PCD 00 00"), slot 1 is 35964 ("... 00 01");
``--port`` overrides for a private pcscd configuration.

The card comes from a factory ``(path) -> SimulatedCard``: by default
``sscard.cli.connect.load_sim_card`` (``echo`` = the echo card, else a card
image through ``sscard.simulators.card.load_card``, or whatever loader was
registered with ``set_sim_loader``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import click

from sscard.cli.common import common_options, emit, handle_errors
from sscard.simulators.base import SimulatedCard
from sscard.simulators.vpcd import DEFAULT_PORT, VpcdBridge

CardFactory = Callable[[str], SimulatedCard]


def make_serve_command(
    factory: CardFactory | None = None, *, until: threading.Event | None = None
) -> click.Command:
    """Build the ``serve`` command around a card factory (``until`` stops it, for tests)."""

    @click.command(name="serve")
    @click.argument("card_file")
    @click.option("--slot", type=click.IntRange(0, 1), default=0, show_default=True)
    @click.option(
        "--port",
        type=click.IntRange(1, 65535),
        default=None,
        help="vpcd port (default 35963 + slot).",
    )
    @click.option("--host", default="127.0.0.1", show_default=True)
    @common_options
    @handle_errors
    def serve(card_file: str, slot: int, port: int | None, host: str) -> None:
        """Serve CARD_FILE on a vpcd slot of pcscd until Ctrl-C."""
        if factory is None:
            from sscard.cli.connect import load_sim_card

            card = load_sim_card(card_file)
        else:
            card = factory(card_file)
        target = port if port is not None else DEFAULT_PORT + slot
        emit(
            {"card": card_file, "host": host, "port": target, "slot": slot,
             "atr": card.atr.hex().upper()},
            f"serving {card_file} on vpcd {host}:{target} (slot {slot}); Ctrl-C stops",
        )  # fmt: skip
        bridge = VpcdBridge(card, host=host, port=target).start()
        stop = until or threading.Event()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            bridge.stop()

    return serve


command = make_serve_command()
