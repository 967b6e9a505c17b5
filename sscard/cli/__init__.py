"""The ``sscard`` command: a small click group; each area adds its own module."""

from __future__ import annotations

import click

from sscard import __version__
from sscard.cli.common import common_options, emit


@click.group()
@common_options
def main() -> None:
    """sscard: social security card terminal SDK (Yangtze River Delta one-card pass)."""


@main.command()
@common_options
def version() -> None:
    """Print the sscard version."""
    emit({"version": __version__}, f"sscard {__version__}")


def _register() -> None:
    # Each module defines one click command or group named like the module.
    import importlib

    for name in _COMMAND_MODULES:
        module = importlib.import_module(f"sscard.cli.{name}")
        main.add_command(module.command)


_COMMAND_MODULES: list[str] = ["apdu", "sim"]
_register()
