"""``sscard sim serve CARD_FILE``: the simulated card as a real PC/SC reader (vpcd).

Connects the card to pcscd's vsmartcard-vpcd driver (§N3) and
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
from sscard.errors import ConfigError
from sscard.simulators.base import SimulatedCard
from sscard.simulators.faults import Faults, Tear, TearPoint, ins_is
from sscard.simulators.vpcd import DEFAULT_PORT, VpcdBridge

CardFactory = Callable[[str], SimulatedCard]


def parse_tear(spec: str) -> Tear:
    """``INS[:before|after][:every]``, INS in hex (``54`` = DEBIT FOR PURCHASE, ``805a``
    for CLA 80 INS 5A): tear (cut the power of) the first such command, before or
    after its commit point (default after: the debit happened, the answer is lost)."""
    parts = spec.lower().split(":")
    code, rest = parts[0], parts[1:]
    try:
        value = int(code, 16)
    except ValueError:
        value = -1
    if not (len(code) in (2, 4) and 0 <= value <= 0xFFFF):
        raise ConfigError(
            f"--tear-on {spec}: INS as 2 hex digits (54) or CLA+INS as 4 (8054)",
            f"--tear-on {spec}：INS 应为2位十六进制（54）或 CLA+INS 4位（8054）",
        )
    cla, ins = (value >> 8, value & 0xFF) if len(code) == 4 else (None, value)
    point, once = TearPoint.AFTER_COMMIT, True
    for word in rest:
        if word in ("before", "after"):
            point = TearPoint(word)
        elif word == "every":
            once = False
        else:
            raise ConfigError(
                f"--tear-on {spec}: say before, after or every, not {word!r}",
                f"--tear-on {spec}：应为 before、after 或 every",
            )
    return Tear(point, when=ins_is(ins, cla), once=once)


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
    @click.option(
        "--tear-on",
        "tear_specs",
        multiple=True,
        metavar="INS[:before|after][:every]",
        help="Cut the card's power on this command (hex INS, e.g. 54 or 8054), before or "
        "after its commit (default after); once unless ':every'. Repeatable.",
    )
    @click.option(
        "--latency",
        type=click.FloatRange(0, 10),
        default=0.0,
        help="Seconds the card waits before every answer (a slow card).",
    )
    @common_options
    @handle_errors
    def serve(
        card_file: str,
        slot: int,
        port: int | None,
        host: str,
        tear_specs: tuple[str, ...],
        latency: float,
    ) -> None:
        """Serve CARD_FILE (a card or PSAM image) on a vpcd slot of pcscd until Ctrl-C.

        Faults for testing a terminal: ``--tear-on 8054`` tears the first DEBIT FOR
        PURCHASE after the card committed it (the validator must recover it on the
        next tap); ``--latency 0.2`` makes every answer slow.
        """
        tears = [parse_tear(spec) for spec in tear_specs]  # bad flags: before the card
        if factory is None:
            from sscard.cli.connect import load_sim_card

            card = load_sim_card(card_file)
        else:
            card = factory(card_file)
        if tears or latency:
            faults = getattr(card, "faults", None)
            if not isinstance(faults, Faults):
                raise ConfigError(
                    "this card has no fault plan (--tear-on, --latency need a card image)",
                    "此卡不支持故障注入（--tear-on、--latency 需卡片映像）",
                )
            faults.arm(*tears)
            faults.latency = latency
        target = port if port is not None else DEFAULT_PORT + slot
        emit(
            {"card": card_file, "host": host, "port": target, "slot": slot,
             "atr": card.atr.hex().upper(), "tear_on": list(tear_specs), "latency": latency},
            f"serving {card_file} on vpcd {host}:{target} (slot {slot}); Ctrl-C stops"
            + (f"; tearing on {', '.join(tear_specs)}" if tear_specs else "")
            + (f"; latency {latency:g} s" if latency else ""),
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
