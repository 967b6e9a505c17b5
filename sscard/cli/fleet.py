"""``sscard sim fleet``: a fleet's clearing uploads with known faults (docs/clearing.md).

Writes ``uploads/day=YYYYMMDD/*.parquet`` (one file per operator and day),
``issuer-keys.json`` (the simulator's TEST keys for every issuer in the fleet),
``truth.parquet`` (each row's expected clearing reason) and ``truth-lost.parquet``
(the lost uploads) to ``--out``; see :mod:`sscard.simulators.fleet`.
"""

from __future__ import annotations

from typing import Any

import click

from sscard.cli.common import common_options, emit, handle_errors


@click.command(name="fleet")
@click.option("--validators", type=click.IntRange(8), required=True)
@click.option("--cards", type=click.IntRange(10), required=True)
@click.option("--days", type=click.IntRange(1, 31), default=1, show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option(
    "--taps-per-day",
    type=click.IntRange(10),
    default=None,
    help="Taps a day over the fleet (default: 3 per card).",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    default="2025-03-03",
    show_default=True,
    help="First day (Beijing date).",
)
@click.option("--seed", type=int, default=19, show_default=True)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=SHARE",
    help="Fault share, e.g. grey=0.01 (duplicate_batches, lost_batches,"
    " corrupted_tacs, forged_copies, conflicting_copies, recovered, grey).",
)
@common_options
@handle_errors
def command(
    validators: int, cards: int, days: int, out_dir: str, taps_per_day: int | None,
    start: Any, seed: int, faults: tuple[str, ...],
) -> None:  # fmt: skip
    """Generate a fleet's uploads with known faults, TEST keys and the ground truth."""
    import dataclasses

    from sscard.errors import ConfigError
    from sscard.simulators.fleet import FaultRates, FleetSpec, generate

    rates: dict[str, float] = {}
    known = {f.name for f in dataclasses.fields(FaultRates)}
    for item in faults:
        name, _, value = item.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if name not in known or share < 0:
            raise ConfigError(
                f"--fault {item!r}: use NAME=SHARE with NAME one of {', '.join(sorted(known))}",
                f"--fault {item!r}格式错误",
            )
        rates[name] = share
    spec = FleetSpec(
        validators=validators, cards=cards, days=days, taps_per_day=taps_per_day,
        start=start.date(), seed=seed, faults=FaultRates(**rates),
    )  # fmt: skip
    result = generate(spec, out_dir, progress=lambda m: click.echo(m, err=True))
    emit(
        result.to_dict(),
        f"{result.rows:,} rows ({result.taps:,} taps) in {result.files} files,"
        f" {result.seconds:.1f} s -> {result.out}",
    )
