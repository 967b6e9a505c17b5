"""``sscard monitor``: print card and reader events until Ctrl-C (or --count/--timeout)."""

from __future__ import annotations

import json
import time

import click

from sscard.cli.common import common_options, handle_errors, options
from sscard.terminals.monitor import CardMonitor


@click.command(name="monitor")
@click.option("--count", type=int, default=None, help="Stop after this many events.")
@click.option("--timeout", type=float, default=None, help="Stop after this many seconds.")
@common_options
@handle_errors
def command(count: int | None, timeout: float | None) -> None:
    """Watch readers for card insertion/removal; survives pcscd restarts."""
    opts = options()
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    with CardMonitor(readers=[opts.reader] if opts.reader else None) as monitor:
        try:
            while deadline is None or time.monotonic() < deadline:
                wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
                event = monitor.get(wait)
                if event is None:
                    continue
                if opts.json:
                    click.echo(json.dumps(event.as_dict(), ensure_ascii=False))
                else:
                    click.echo(f"{time.strftime('%H:%M:%S')} {event}")
                seen += 1
                if count is not None and seen >= count:
                    break
        except KeyboardInterrupt:
            pass
