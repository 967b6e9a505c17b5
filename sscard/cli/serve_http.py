"""``sscard serve``: the local reader service for browser-based HIS pages (HTTP + WebSocket).

Not ``sscard sim serve`` (:mod:`sscard.cli.serve`, a simulated card as a PC/SC reader).
Settings come from ``--config serve.toml`` (schema ``sscard-serve/1``,
examples/serve.toml) with command-line overrides; ``--sim card.json`` serves one
simulated card in-process instead of the PC/SC readers. docs/reader-service.md has the
API, the security rules and the configuration keys.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import click

from sscard.cli.common import common_options, handle_errors, options
from sscard.errors import ConfigError


@click.command(name="serve")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="TCP port (default 27301)."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True),
    envvar="SSCARD_SERVE_CONFIG",
    help="Service settings (TOML, sscard-serve/1; env SSCARD_SERVE_CONFIG).",
)
@click.option(
    "--bind", type=click.Choice(["127.0.0.1", "::1"]), default=None, help="Loopback address."
)
@click.option("--allow-origin", multiple=True, help="Allow this page origin (exact; repeatable).")
@click.option(
    "--full-data-origin", multiple=True, help="Allow this origin and give it unmasked data."
)
@click.option("--pairing", is_flag=True, default=None, help="Require a pairing token.")
@click.option("--keys", default=None, help="Card keys: a key-set file, or 'test' (TEST keys).")
@click.option("--psam-reader", default=None, help="PC/SC reader holding the PSAM (card keys).")
@click.option("--audit-db", type=click.Path(dir_okay=False), default=None, help="Audit log file.")
@common_options
@handle_errors
def command(
    port: int | None,
    config_path: str | None,
    bind: str | None,
    allow_origin: tuple[str, ...],
    full_data_origin: tuple[str, ...],
    pairing: bool | None,
    keys: str | None,
    psam_reader: str | None,
    audit_db: str | None,
) -> None:
    """Serve the card readers to web pages on loopback (HTTP + WebSocket, API /v1/)."""
    from pathlib import Path

    from sscard.serve import ReaderService, ServeConfig, serve_forever
    from sscard.serve.backend import Backend, PcscBackend, SimBackend

    config = ServeConfig.load(config_path) if config_path else ServeConfig()
    overrides: dict[str, Any] = {
        "port": port,
        "bind": bind,
        "pairing": pairing,
        "keys": keys,
        "psam_reader": psam_reader,
        "audit_db": Path(audit_db) if audit_db else None,
    }
    config = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    config = config.with_origins(allow_origin, full_data_origin)
    opts = options()
    backend: Backend
    if opts.sim:
        from sscard.cli.connect import load_sim_card

        sim = SimBackend(["sscard simulator 00"])
        sim.insert("sscard simulator 00", load_sim_card(opts.sim))
        backend = sim
        if config.keys is None and config.psam_reader is None:
            config = dataclasses.replace(config, keys="test")
    else:
        ignore = (config.psam_reader,) if config.psam_reader else ()
        backend = PcscBackend(ignore=config.ignore_readers + ignore)
    if config.port == 0:
        raise ConfigError("give a fixed --port: pages need to know it", "请指定固定端口")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def announce(text: str) -> None:
        click.echo(text, err=True)

    service = ReaderService(config, backend, announce=announce)
    host = "[::1]" if config.bind == "::1" else config.bind
    click.echo(f"sscard serve: http://{host}:{config.port}/v1/ (Ctrl-C stops)", err=True)
    if not config.origins:
        click.echo(
            "no page origin allowed yet: add --allow-origin https://your-his.example "
            "/ 尚未允许任何网页来源",
            err=True,
        )
    for rule in config.origins:
        click.echo(f"  origin {rule.url}: {'full data' if rule.full_data else 'masked'}", err=True)
    serve_forever(service)
