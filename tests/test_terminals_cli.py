"""CLI: readers, monitor, atr, apdu send, trace show, doctor, sim serve."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from pcsc_harness import T0_ATR, PcscdControl, TestCard, VirtualReader

from sscard.cli import apdu_send, atr, doctor, monitor, readers, serve, trace
from sscard.cli.common import common_options
from sscard.simulators.pcscd import SOCKET_ENV, PrivatePcscd, running_pcscd_pids
from sscard.terminals import Connection
from sscard.terminals.pcsc import PcscTransport, wait_for_card


@click.group()
@common_options
def cli() -> None:
    """The commands of this issue, attached the way sscard.cli registers them."""


@click.group(name="apdu")
def apdu_group() -> None:
    """apdu"""


@click.group(name="sim")
def sim_group() -> None:
    """sim"""


apdu_group.add_command(apdu_send.send_command)
sim_group.add_command(serve.command)
for module in (readers, monitor, atr, trace, doctor):
    cli.add_command(module.command)
cli.add_command(apdu_group)
cli.add_command(sim_group)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_atr_offline_decodes_the_ssc_pattern() -> None:
    code, out = run("atr", T0_ATR.hex())
    assert code == 0
    assert "TB1        00" in out and "protocols  T=0" in out
    assert "chip maker 0081 Huada" in out and "COS        543101 TurboCOS" in out
    code, out = run("atr", "--json", "3B80800101")
    assert code == 0 and json.loads(out)["protocols"] == ["T=0", "T=1"]
    code, out = run("atr", "3B6D")
    assert code == 2 and "ATR" in out


def test_atr_and_apdu_send_on_the_in_process_simulator(tmp_path: Path) -> None:
    code, out = run("atr", "--sim", "echo")
    assert code == 0 and "reader     sim:echo (active T=1)" in out
    trace_file = tmp_path / "t.jsonl"
    code, out = run(
        "apdu", "send", "--sim", "echo", "--trace", str(trace_file),
        "00EE0000 03 010203 00", ";", "0020000003123456",
    )  # fmt: skip
    assert code == 0
    assert "< 01 02 03  9000" in out
    code, out = run("trace", "show", str(trace_file))
    assert code == 0
    assert "VERIFY" in out and "<3 bytes redacted>" in out and "123456" not in out
    code, out = run("apdu", "send", "--sim", "echo", "--json", "00B2010403AABBCC")
    assert code == 0 and json.loads(out)["redacted"] == 3
    code, out = run("apdu", "send", "--sim", "echo", "--no-redact", "00B2010403AABBCC")
    assert "AA BB CC" in out


def test_bad_input_is_one_bilingual_line() -> None:
    code, out = run("apdu", "send", "--sim", "echo", "00ZZ")
    assert code == 2 and out.startswith("error:") and " / " in out
    code, out = run("apdu", "send", "--sim", "missing.json", "00A40000")
    assert code == 2 and "missing.json" in out
    code, out = run("trace", "show", "/nonexistent/trace.jsonl")
    assert code == 2 and "trace" in out


@pytest.mark.pcsc
def test_readers_and_monitor(vreader: VirtualReader, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSCARD_READER_IGNORE", raising=False)
    vreader.insert(TestCard(t0=True))
    code, out = run("readers")
    assert code == 0
    assert f" 0  {vreader.name}  [card {T0_ATR.hex().upper()}]" in out.splitlines()
    monkeypatch.setenv("SSCARD_READER_IGNORE", "00 00")
    code, out = run("readers", "--json")
    rows = json.loads(out)
    assert rows[0]["ignored"] and rows[1]["index"] == 0
    code, out = run("monitor", "--json", "--count", "2", "--timeout", "5", "-r", vreader.name)
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["kind"] for e in events] == ["reader-added", "inserted"]


@pytest.mark.pcsc
def test_doctor_and_pcscd_down(pcscd_control: PcscdControl) -> None:
    code, out = run("doctor")
    assert code == 0 and "[ ok ] pcscd running" in out and "sscard test VPCD 00 00" in out
    pcscd_control.stop()
    code, out = run("doctor")
    assert code == 1 and "[fail] pcscd running" in out
    if running_pcscd_pids():  # a host pcscd beside the stopped private one
        assert "none answers on" in out and f"fix: if {SOCKET_ENV} is set" in out
    else:
        assert "no pcscd process" in out and "fix: start it as root: `pcscd`" in out
    code, out = run("readers")
    assert code == 3 and "sscard doctor" in out


@pytest.mark.pcsc
def test_sim_serve_puts_the_card_in_a_pcsc_reader(pcscd: PrivatePcscd) -> None:
    stop = threading.Event()
    command = serve.make_serve_command(lambda path: TestCard(t0=False), until=stop)
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(
            CliRunner().invoke(command, ["card.json", "--port", str(pcscd.ports[1])])
        )
    )
    worker.start()
    try:
        reader = pcscd.reader_names[1]
        assert wait_for_card(reader, timeout=5)
        with Connection(PcscTransport(reader)) as conn:
            assert conn.protocol == "T=1"
    finally:
        stop.set()
        worker.join(5)
        wait_for_card(pcscd.reader_names[1], present=False, timeout=5)
    assert f"serving card.json on vpcd 127.0.0.1:{pcscd.ports[1]}" in result[0].output  # type: ignore[attr-defined]
