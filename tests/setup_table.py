"""The program -> Debian package table (scripts/debian-packages.tsv), for tests.

The set-up script installs what the table names; tests that start one of these
programs call :func:`require_program`, which skips loudly, naming the package and
the command that installs it, when set-up could not install it (not root, no
network) — exactly like the PC/SC tests skip when pcscd is missing.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

import pytest

TABLE = Path(__file__).resolve().parent.parent / "scripts" / "debian-packages.tsv"


@cache
def packages() -> dict[str, str]:
    """Program name or absolute path -> Debian package, as the table lists them."""
    table: dict[str, str] = {}
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if len(fields) >= 2 and not line.startswith("#"):
            table[fields[0]] = fields[1]
    return table


def package_for(program: str) -> str | None:
    """The package that provides ``program`` (a name or a path), or None if unlisted."""
    table = packages()
    if program in table:
        return table[program]
    name = Path(program).name
    for listed, package in table.items():
        if Path(listed).name == name:
            return package
    return None


def require_program(program: str) -> str:
    """The program's path; skip the test, loudly, when set-up could not install it."""
    package = package_for(program)
    if package is None:  # the guard test catches this too; fail, never skip, on a typo
        pytest.fail(f"{program} is not in {TABLE.name}: add it with its Debian package")
    found = (
        shutil.which(program)
        if "/" not in program
        else (program if Path(program).exists() else None)
    )
    if found is None:
        pytest.skip(
            f"PROGRAM MISSING, TEST SKIPPED: {program} (Debian package {package}); "
            f"install it with `sudo make test` or `sudo apt-get install {package}`"
        )
    return found
