"""Two private pcscds at once, each serving only its own clients.

pcscd 1.9 hard-codes /run/pcscd; sscard runs its private daemon in its own mount
namespace so tests, demo and benchmarks run beside a host pcscd with real readers
(and beside each other). Proven here with a second daemon started by a separate
process while this session's daemon is up: each side lists only its own readers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pcsc_harness import VirtualReader

from sscard.simulators.pcscd import SOCKET_ENV, PrivatePcscd, can_isolate

SECOND = r"""
import json, sys
from sscard.simulators.pcscd import PrivatePcscd
with PrivatePcscd(friendly_name="sscard second VPCD", channel_id=0x9D00) as daemon:
    from smartcard.System import readers
    print(json.dumps({"socket": str(daemon.socket_path), "readers": [str(r) for r in readers()]}))
"""


@pytest.mark.pcsc
def test_a_second_private_pcscd_runs_beside_this_one(
    pcscd: PrivatePcscd, vreader: VirtualReader
) -> None:
    if not can_isolate():
        pytest.skip("this host allows no private mount namespace (unshare): one pcscd only")
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    out = subprocess.run(
        [sys.executable, "-c", SECOND], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    second = json.loads(out.stdout)
    assert second["readers"] == ["sscard second VPCD 00 00", "sscard second VPCD 00 01"]
    assert second["socket"] != os.environ[SOCKET_ENV]
    # this session's daemon still serves its own readers, and only those
    from smartcard.System import readers

    assert [str(r) for r in readers()] == list(pcscd.reader_names)
    assert not os.path.exists(second["socket"])  # the second left nothing behind
