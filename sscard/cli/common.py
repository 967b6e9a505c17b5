"""Options every sscard command takes, and the one place errors become output.

GlobalPlatformPro-style reader choice: ``-r/--reader`` (index or name
substring) or ``SSCARD_READER``; ``--sim card.json`` uses the in-process
simulator instead of PC/SC; ``--trace FILE`` writes a JSON-lines APDU trace;
``--json`` prints machine-readable output; personal data and secrets are
redacted unless ``--no-redact`` is given. The options are accepted both on the
``sscard`` group and on each command (the command's value wins).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from sscard.errors import ConfigError, ExitStatus, SscardError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class CliOptions:
    reader: str | None = None
    sim: str | None = None
    trace: str | None = None
    json: bool = False
    redact: bool = True


def _merge(ctx: click.Context, name: str, value: Any) -> None:
    opts = ctx.find_object(CliOptions)
    if opts is None:
        opts = ctx.ensure_object(CliOptions)
    default = getattr(CliOptions(), name)
    if value is not None and value != default:
        setattr(opts, name, value)


def common_options(func: F) -> F:
    """Add ``-r/--reader``, ``--sim``, ``--trace``, ``--json``, ``--no-redact``."""

    def cb(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
        def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
            _merge(ctx, name, value)
            return value

        return callback

    decorators = [
        click.option(
            "-r",
            "--reader",
            envvar="SSCARD_READER",
            default=None,
            expose_value=False,
            callback=cb("reader"),
            help="Reader index or name substring (env SSCARD_READER).",
        ),
        click.option(
            "--sim",
            type=click.Path(dir_okay=False),
            default=None,
            expose_value=False,
            callback=cb("sim"),
            help="Use the in-process simulator with this card image instead of PC/SC.",
        ),
        click.option(
            "--trace",
            type=click.Path(dir_okay=False),
            default=None,
            expose_value=False,
            callback=cb("trace"),
            help="Write a JSON-lines APDU trace to FILE (redacted unless --no-redact).",
        ),
        click.option(
            "--json",
            "json_",
            is_flag=True,
            default=False,
            expose_value=False,
            callback=cb("json"),
            help="Machine-readable JSON output.",
        ),
        click.option(
            "--no-redact",
            "redact",
            flag_value=False,
            default=True,
            expose_value=False,
            callback=cb("redact"),
            help="Show personal data and secrets in output and traces.",
        ),
    ]
    for d in reversed(decorators):
        func = d(func)
    return func


def options() -> CliOptions:
    """The merged options of the current invocation."""
    ctx = click.get_current_context()
    return ctx.ensure_object(CliOptions)


def emit(obj: Any, text: str | None = None) -> None:
    """Print ``obj`` as JSON under ``--json``, else ``text`` (or str(obj))."""
    if options().json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text if text is not None else str(obj))


#: Longest secret line accepted on stdin. A PIN has 6 digits (up to 12 under
#: ISO 9564); anything longer is refused unread, so a hostile or mistaken pipe
#: (``cat big.bin | sscard pin verify --pin-stdin``) cannot fill memory.
SECRET_LINE_MAX = 64


def read_secret_line(what_en: str = "PIN", what_zh: str = "密码") -> str:
    """One secret line from stdin, bounded; its text never appears in an error."""
    line = sys.stdin.readline(SECRET_LINE_MAX + 1)
    if len(line.rstrip("\r\n")) > SECRET_LINE_MAX:
        raise ConfigError(
            f"the {what_en} line on stdin is longer than {SECRET_LINE_MAX} characters",
            f"标准输入中的{what_zh}超过 {SECRET_LINE_MAX} 个字符",
        )
    secret = line.strip()
    if not secret:
        raise ConfigError(f"no {what_en} on stdin", f"标准输入中没有{what_zh}")
    return secret


class SystemFailure(SscardError):
    """The operating system or a local database refused (disk full, read-only, locked)."""

    exit_status = ExitStatus.SYSTEM
    code = -999

    def __init__(self, exc: OSError | sqlite3.Error) -> None:
        if isinstance(exc, OSError):
            where = f" ({exc.filename})" if exc.filename else ""
            what = f"{exc.strerror or type(exc).__name__}{where}"
            super().__init__(f"system error: {what}", f"系统错误：{what}")
        else:
            super().__init__(f"local database error: {exc}", f"本地数据库错误：{exc}")


def handle_errors(func: F) -> F:
    """Turn an error into one bilingual line and its ExitStatus (no traceback).

    SscardError carries its own text; an OSError or sqlite3.Error that escaped a
    module (a read-only directory, a full disk, a locked database) is reported as
    a SystemFailure rather than a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return func(*args, **kwargs)
            except (OSError, sqlite3.Error) as exc:
                raise SystemFailure(exc) from exc
        except SscardError as exc:
            if click.get_current_context().find_object(CliOptions) and options().json:
                click.echo(
                    json.dumps(
                        {
                            "error": type(exc).__name__,
                            "code": exc.code,
                            "message_en": exc.message_en,
                            "message_zh": exc.message_zh,
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                click.echo(f"error: {exc.bilingual()}", err=True)
            sys.exit(int(exc.exit_status))

    return wrapper  # type: ignore[return-value]
