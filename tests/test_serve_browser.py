"""The sample HIS page (examples/his) in a real headless Chromium, against ``sscard serve``.

The page is served from its own origin (a static server on another port), the
service is in front of the real pcscd with a simulated card in a vsmartcard-vpcd slot,
and Chromium (Debian's ``chromium``, driven by Playwright's Python package; never a
downloaded browser) does what a clerk's browser does: CORS preflights, the
WebSocket handshake with its Origin, DNS names mapped by the resolver.

* allowed page: insert -> masked data appears (WebSocket auto-read), wrong then right
  PIN, hotel check, remove -> cleared;
* a page from a non-allowed origin: its fetch fails CORS, its WebSocket is refused, no
  card operation ran and the card's PIN counter is untouched;
* DNS rebinding: ``evil.test`` resolved to 127.0.0.1 (``--host-resolver-rules``) and
  opened on the service's port gets 403 / −9003.

Screenshots go to ``$SSCARD_TEST_ARTIFACTS`` (default: ``sscard-artifacts`` in the
system temporary directory), never into the checkout.
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from setup_table import require_program

from sscard.cards.privacy import mask_name
from sscard.pytest_plugin import VirtualReader
from sscard.serve import PcscBackend, ReaderService, ServeConfig, ServiceThread, SimBackend
from sscard.simulators.card import build_card
from sscard.simulators.pcscd import PrivatePcscd
from sscard.simulators.profile import new_card

pytestmark = pytest.mark.pcsc

PAGE_DIR = Path(__file__).resolve().parent.parent / "examples" / "his"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP evil.test 127.0.0.1",
]
TIMEOUT_MS = 15_000


def artifacts_dir() -> Path:
    path = Path(
        os.environ.get("SSCARD_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "sscard-artifacts"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_servers() -> Iterator[tuple[str, str]]:
    """The HIS page from two origins: the allowed one and a stranger."""
    handler = functools.partial(_Quiet, directory=str(PAGE_DIR))
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}" for s in servers)  # type: ignore[misc]
    for s in servers:
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright (one per module: its sync API runs one instance per thread)."""
    require_program("chromium")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="BROWSER TESTS SKIPPED: pip install playwright (dev extra)"
    )
    with sync_api.sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium-profile")),
        executable_path=require_program("chromium"),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1100, "height": 720},
    )
    context.set_default_timeout(TIMEOUT_MS)
    yield context
    context.close()


@pytest.fixture(scope="module")
def service(
    sscard_pcscd: PrivatePcscd,
    page_servers: tuple[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceThread]:
    allowed, _stranger = page_servers
    audit = tmp_path_factory.mktemp("serve") / "audit.sqlite3"
    config = ServeConfig(keys="test", audit_db=audit, pin_interval_s=0).with_origins([allowed])
    with ServiceThread(ReaderService(config, PcscBackend())) as running:
        yield running


def open_page(browser: Any, origin: str, service: ServiceThread) -> Any:
    page = browser.new_page()
    page.goto(f"{origin}/index.html?service={service.url}")
    return page


def test_the_his_page_reads_the_card_on_insert_and_clears_on_remove(
    browser: Any,
    service: ServiceThread,
    page_servers: tuple[str, str],
    sscard_reader: VirtualReader,
) -> None:
    page = browser.new_page()
    frames: list[str] = []
    posts: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(payload)))
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(f"{page_servers[0]}/index.html?service={service.url}")
    try:
        page.wait_for_selector("#status.ok")
        page.wait_for_selector(f"li.reader:has-text('{sscard_reader.name}')")
        # the service runs on TEST keys: the page says so (GET /v1/version "test_keys")
        assert "TEST keys" in (page.text_content("#test-keys") or "")
        assert page.is_visible("#test-keys")
        profile = new_card("zhejiang", generation=3, seed=2022)
        sscard_reader.insert(build_card(profile))
        page.wait_for_selector("#card:not([hidden])")
        name = profile.ssse.ef06.full_name
        assert page.text_content("#card-name") == mask_name(name)
        content = page.content()
        assert profile.ssse.ef06.ssn not in content and name not in content
        assert "✓" in (page.text_content("#card-genuine") or "")
        assert page.is_visible("#masked")

        page.fill("#pin", "000000")
        page.click("#pin-form button")
        page.wait_for_selector("#pin-result .bad")
        assert "[-51]" in (page.text_content("#pin-result") or "")
        assert "2" in (page.text_content("#pin-result") or "")
        page.fill("#pin", "123456")
        page.click("#pin-form button")
        page.wait_for_selector("#pin-result .ok")

        page.click("#hotel-btn")
        page.wait_for_selector("#identity-result .ok")
        assert "accepted" in (page.text_content("#identity-result") or "")

        # "read" asks on the open socket, not with a fetch; the answer fills the card
        before = service.service.stats["card_ops"]
        page.evaluate("document.getElementById('card-name').textContent = ''")
        page.click("#read-btn")
        page.wait_for_function("document.getElementById('card-name').textContent !== ''")
        assert page.text_content("#card-name") == mask_name(name)
        assert service.service.stats["card_ops"] == before + 1
        assert any(json.loads(f).get("type") == "read" for f in frames if f.startswith("{"))
        assert not [u for u in posts if u.endswith("/v1/card/read")]
        shot = artifacts_dir() / "his-card-read.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot: {shot}")

        sscard_reader.eject()
        page.wait_for_selector("#card", state="hidden")
        assert page.is_visible("#card-empty")
        page.screenshot(path=str(artifacts_dir() / "his-card-removed.png"), full_page=True)
    finally:
        page.close()


def test_a_page_from_another_origin_is_refused(
    browser: Any,
    service: ServiceThread,
    page_servers: tuple[str, str],
    sscard_reader: VirtualReader,
) -> None:
    sscard_reader.insert(build_card(new_card("anhui", generation=2, seed=77)))
    before = service.service.stats["card_ops"]
    page = open_page(browser, page_servers[1], service)
    try:
        page.wait_for_selector("#error:has-text('-9001')")
        result = page.evaluate(
            """async (service) => {
                let fetchResult, wsResult;
                try {
                    await fetch(service + "/v1/card/pin/verify", {method: "POST",
                        headers: {"X-SSCard-Request": "1", "Content-Type": "application/json"},
                        body: JSON.stringify({pin: "000000"})});
                    fetchResult = "answered";
                } catch (e) { fetchResult = "blocked:" + e.name; }
                wsResult = await new Promise((resolve) => {
                    const ws = new WebSocket(service.replace("http", "ws") + "/v1/events");
                    ws.onopen = () => resolve("open");
                    ws.onerror = () => resolve("refused");
                });
                return {fetchResult, wsResult};
            }""",
            service.url,
        )
        assert result == {"fetchResult": "blocked:TypeError", "wsResult": "refused"}
        page.screenshot(path=str(artifacts_dir() / "his-refused-origin.png"), full_page=True)
    finally:
        page.close()
    assert service.service.stats["card_ops"] == before  # no handler touched the card
    from sscard.applets.ssse import SsseReader
    from sscard.terminals import Connection, PcscTransport

    with Connection(PcscTransport(sscard_reader.name)) as conn:
        assert SsseReader(conn).pin_tries_left() == 3


def test_a_dns_rebound_name_is_refused_by_host(browser: Any, service: ServiceThread) -> None:
    page = browser.new_page()
    try:
        response = page.goto(f"http://evil.test:{service.port}/v1/readers")
        assert response is not None and response.status == 403
        assert '"code": -9003' in (page.text_content("body") or "")
    finally:
        page.close()


# =========================================================================== Local Network Access

READ_JS = """async (service) => {
    try {
        const r = await fetch(service + "/v1/card/read", {method: "POST",
            headers: {"Content-Type": "application/json", "X-SSCard-Request": "1"}, body: "{}"});
        return "code " + (await r.json()).code;
    } catch (e) { return "failed"; }
}"""
SOCKET_JS = """(service) => new Promise((resolve) => {
    const ws = new WebSocket(service.replace("http", "ws") + "/v1/events");
    ws.onmessage = (m) => { resolve(JSON.parse(m.data).type); ws.close(); };
    ws.onerror = () => resolve("failed");
})"""


@pytest.mark.parametrize(
    ("space", "host", "permission", "allowed", "expect"),
    [
        # a public https-like page (a secure context: the page's URL is loopback) ...
        ("public", "127.0.0.1", False, True, "blocked by the browser"),
        ("public", "127.0.0.1", True, True, "read"),
        ("public", "127.0.0.1", True, False, "refused by the service"),
        # ... a public http page (not a secure context: it cannot even ask) ...
        ("public", "his.example", False, True, "blocked by the browser"),
        # ... and an http intranet page (address space "local"): not gated in Chromium 156
        ("local", "his.intranet", False, True, "read"),
    ],
)
def test_local_network_access_as_chromium_applies_it(
    playwright: Any,
    page_servers: tuple[str, str],
    tmp_path: Path,
    space: str,
    host: str,
    permission: bool,
    allowed: bool,
    expect: str,
) -> None:
    """Chrome's Local Network Access (142+; WebSockets 147+) in Debian's Chromium, page spaces set
    with ``--ip-address-space-overrides``: a public page reaches the loopback service only
    from a secure context with the permission granted, and the service's own allow-list
    still decides then. Measured, against the reference: an http intranet page reaches
    loopback without a prompt (docs/reader-service.md, "Browsers")."""
    port = int(page_servers[0].rsplit(":", 1)[1])
    origin = f"http://{host}:{port}"
    sim = SimBackend(["lna reader"])
    sim.insert("lna reader", build_card(new_card("shanghai", generation=3, seed=8)))
    config = ServeConfig(keys="test", audit_db=tmp_path / "audit.sqlite3")
    config = config.with_origins([origin] if allowed else [])
    flags = [
        *(f for f in CHROMIUM_FLAGS if not f.startswith("--host-resolver-rules")),
        "--host-resolver-rules=MAP his.example 127.0.0.1, MAP his.intranet 127.0.0.1",
        f"--ip-address-space-overrides=127.0.0.1:{port}={space}",
    ]
    with ServiceThread(ReaderService(config, sim)) as running:
        browser = playwright.chromium.launch(
            executable_path=require_program("chromium"), headless=True, args=flags
        )
        try:
            context = browser.new_context()
            if permission:
                context.grant_permissions(["local-network-access"], origin=origin)
            page = context.new_page()
            page.goto(f"{origin}/index.html?service=none")
            assert page.evaluate("window.isSecureContext") is (host == "127.0.0.1")
            result = page.evaluate(READ_JS, running.url)
            socket = page.evaluate(SOCKET_JS, running.url)  # LNA covers WebSockets (M147+)
        finally:
            browser.close()
        stats = running.service.stats
    if expect == "read":
        assert (result, socket) == ("code 0", "hello") and stats["card_ops"] == 1
    elif expect == "blocked by the browser":  # nothing reached the service
        assert (result, socket) == ("failed", "failed")
        assert stats == {"card_ops": 0, "refused": 0}
    else:  # the preflight and the handshake reached the service and were refused
        assert (result, socket) == ("failed", "failed")
        assert stats["card_ops"] == 0 and stats["refused"] == 2
