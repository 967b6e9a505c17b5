"""Guard: every program a test, the demo or a benchmark starts is installed by set-up.

CI passed on a machine that happened to have OpenSC while a fresh one
failed, because nothing tied the programs the suite starts to the packages
``scripts/install-debian-deps.sh`` installs. Both now read one table,
``scripts/debian-packages.tsv``; this test reads the source (AST, no execution)
of tests/, benchmarks/ and sscard/ and fails when a program started there —
``subprocess.run/Popen/check_output/...``, ``os.exec*``, ``shutil.which`` or
``require_program`` — is not in the table.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from setup_table import TABLE, package_for, packages

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("tests", "benchmarks", "sscard")
STARTERS = {"run", "Popen", "check_output", "check_call", "call", "getoutput", "getstatusoutput"}
LOOKUPS = {"which", "require_program"}


class _Unresolved(Exception):
    pass


#: A function parameter: its callers pass the program, and they are scanned instead.
_PARAMETER = ast.Constant(value=None)


def _module_names(tree: ast.Module) -> dict[str, ast.expr]:
    """Every ``name = value`` in the module, at any depth (first one wins)."""
    names: dict[str, ast.expr] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.arg):
            names.setdefault(node.arg, _PARAMETER)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            names.setdefault(node.target.id, node.value)
    return names


def _program(expr: ast.expr, names: dict[str, ast.expr], depth: int = 0) -> str | None:
    """The program an argv expression names; None for the running Python itself."""
    if depth > 8:
        raise _Unresolved
    if expr is _PARAMETER:
        return None
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return expr.value.split()[0] if expr.value.split() else None
    if isinstance(expr, (ast.List, ast.Tuple)) and expr.elts:
        return _program(expr.elts[0], names, depth + 1)
    if isinstance(expr, ast.Attribute) and expr.attr == "executable":
        return None  # sys.executable: the venv's Python
    if isinstance(expr, ast.Name) and expr.id in names:
        return _program(names[expr.id], names, depth + 1)
    if isinstance(expr, ast.Call):
        func = expr.func
        called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if called in {"str", "fspath", "Path"} and expr.args:
            return _program(expr.args[0], names, depth + 1)
        if called in LOOKUPS and expr.args:
            return _program(expr.args[0], names, depth + 1)
    raise _Unresolved


def started_programs(source: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """(line, program) for every program the source starts or looks up."""
    tree = ast.parse(source, filename)
    names = _module_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else ""
            starts = (owner == "subprocess" and func.attr in STARTERS) or (
                owner in {"os", "shutil"} and (func.attr.startswith("exec") or func.attr == "which")
            )
        else:
            starts = isinstance(func, ast.Name) and func.id in LOOKUPS
        if not starts:
            continue
        try:
            program = _program(node.args[0], names)
        except _Unresolved:
            program = f"<unresolved: {ast.unparse(node.args[0])}>"
        if program is not None:
            yield node.lineno, program


def _tree_programs() -> list[tuple[str, str]]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            for line, program in started_programs(path.read_text(encoding="utf-8"), str(path)):
                found.append((f"{path.relative_to(ROOT)}:{line}", program))
    return found


def test_every_started_program_is_installed_by_setup() -> None:
    found = _tree_programs()
    unlisted = [f"{where}: {program}" for where, program in found if package_for(program) is None]
    assert not unlisted, (
        f"programs started but not installed by set-up; add each to {TABLE.name} "
        "with its Debian package:\n" + "\n".join(unlisted)
    )
    # Not vacuous: the scan sees the outside programs the suite is known to start.
    assert {"pcscd", "scriptor", "opensc-tool"} <= {Path(p).name for _, p in found}


def test_the_guard_catches_a_new_unlisted_tool() -> None:
    source = (
        "import subprocess, shutil\n"
        "TOOL = 'some-new-tool'\n"
        "def test_x():\n"
        "    subprocess.run(['some-new-tool', '--version'], check=True)\n"
        "    subprocess.Popen([TOOL])\n"
        "    shutil.which('another-tool')\n"
        "    subprocess.run([sys.executable, '-c', 'pass'])\n"
    )
    found = list(started_programs(source))
    assert found == [(4, "some-new-tool"), (5, "some-new-tool"), (6, "another-tool")]
    assert all(package_for(program) is None for _, program in found)


def test_the_guard_would_have_failed_before_opensc_was_listed() -> None:
    """The tree before the guard: opensc-tool started by a test, opensc not installed by set-up."""
    source = "import subprocess\nsubprocess.run(['opensc-tool', '--send-apdu', '00A4'])\n"
    [(_, program)] = list(started_programs(source))
    assert program == "opensc-tool" and package_for(program) == "opensc"
    old_script_packages = {"pcscd", "libpcsclite-dev", "vsmartcard-vpcd", "gcc", "pcsc-tools"}
    assert package_for(program) not in old_script_packages


def test_the_install_script_installs_exactly_the_table() -> None:
    """The script reads the table; no package list of its own to drift apart."""
    script = (ROOT / "scripts" / "install-debian-deps.sh").read_text(encoding="utf-8")
    assert "debian-packages.tsv" in script
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    words = set(re.findall(r"[a-z0-9][a-z0-9.+-]*", "\n".join(code)))
    assert not (set(packages().values()) - {"dpkg"}) & words


@pytest.mark.parametrize("program", sorted(packages()))
def test_an_installed_package_provides_its_program(program: str) -> None:
    """The table is right: where dpkg says the package is installed, the program is there."""
    package = packages()[program]
    if shutil.which("dpkg-query") is None:
        pytest.skip("not a Debian system (dpkg-query missing)")
    status = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    if "install ok installed" not in status.stdout:
        pytest.skip(
            f"PACKAGE MISSING: {package}; install it with `sudo make test` "
            f"or `sudo apt-get install {package}`"
        )
    present = Path(program).exists() if program.startswith("/") else shutil.which(program)
    assert present, f"{package} is installed but {program} is not there: fix {TABLE.name}"
