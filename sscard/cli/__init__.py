"""The ``sscard`` command: a small click group; each area adds its own module."""

from __future__ import annotations

import click

from sscard import __version__
from sscard.cli.common import common_options, emit
from sscard.errors import EXIT_STATUS_HELP


@click.group(epilog="\b\n" + EXIT_STATUS_HELP)
@common_options
def main() -> None:
    """sscard: social security card terminal SDK (Yangtze River Delta one-card pass)."""


@main.command()
@common_options
def version() -> None:
    """Print the sscard version."""
    emit({"version": __version__}, f"sscard {__version__}")


def _register() -> None:
    # Each module defines one click command or group (``command``) named like the module.
    import importlib

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"sscard.cli.{name}")
        main.add_command(module.command)
    _attach_subcommands()


def _attach_subcommands() -> None:
    """Commands that live in their own module but appear under another group."""
    from sscard.cli import apdu, apdu_send, card, ecard, insurance_sim, serve, sim, sim_set

    main.add_command(card.read_command)
    main.add_command(card.pin_group)
    main.add_command(card.auth_command)
    from sscard.cli import transit

    main.add_command(transit.validator_group)
    apdu.command.add_command(apdu_send.send_command)
    sim.command.add_command(serve.command)
    sim.command.add_command(sim_set.command)
    from sscard.cli import fleet

    sim.command.add_command(fleet.command)
    sim_ecard = click.Group("ecard", help="Electronic social security card: the simulated issuer.")
    sim_ecard.add_command(ecard.command.commands["issue"])
    sim.command.add_command(sim_ecard)
    sim_insurance = click.Group("insurance", help="The simulated medical-insurance platform.")
    sim_insurance.add_command(insurance_sim.command)
    sim.command.add_command(sim_insurance)


_COMMAND_MODULES: list[str] = [
    "apdu",
    "sim",
    "readers",
    "monitor",
    "atr",
    "trace",
    "doctor",
    "journal",
    "medical",
    "identity",
    "transit",
    "serve_http",
    "clearing",
]
_register()
