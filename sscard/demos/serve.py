"""Demo scene: a web HIS page reads the card through ``sscard serve`` (docs/reader-service.md).

The service starts on an ephemeral loopback port in front of the demo's card slot
(pcscd + vpcd when the stage has them, in-process otherwise), the sample page of
``examples/his`` is served from its own origin, and headless Chromium opens it: the
card goes in, the page shows the masked holder, a screenshot is written and its path
printed. Without Chromium (Debian package ``chromium``) or Playwright the scene calls
the same API with an HTTP client and says why.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sscard.demos.stage import Stage
from sscard.simulators.card import build_card
from sscard.simulators.profile import new_card

PAGE_DIR = Path(__file__).resolve().parents[2] / "examples" / "his"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _out_dir() -> Path:
    out = Path(os.environ.get("SSCARD_DEMO_OUT") or Path(tempfile.gettempdir()) / "sscard-demo")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _browser_missing() -> str:
    if shutil.which("chromium") is None:
        return "chromium is not installed (Debian package chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install 'sscard[dev]')"
    return ""


def _in_browser(page_url: str, insert: Callable[[], None]) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
        chromium = shutil.which("chromium") or "chromium"
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=chromium, headless=True, args=FLAGS,
            viewport={"width": 1100, "height": 640},
        )  # fmt: skip
        try:
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.goto(page_url)
            page.wait_for_selector("#status.ok")
            print("   page connected to the service (WebSocket /v1/events) / 页面已连接读卡服务")
            insert()
            page.wait_for_selector("#card:not([hidden])")
            print(f"   card inserted: page shows {page.text_content('#card-name')}, "
                  f"{page.text_content('#card-ssn')} (masked / 已脱敏)")  # fmt: skip
            page.click("#hotel-btn")
            page.wait_for_selector("#identity-result p")
            print(f"   hotel check on the page: {page.text_content('#identity-result p')}")
            shot = _out_dir() / "his-page.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"   screenshot: {shot}")
        finally:
            context.close()


def _over_http(url: str, origin: str, insert: Callable[[], None]) -> None:
    import httpx

    insert()
    headers = {"Origin": origin, "X-SSCard-Request": "1"}
    with httpx.Client(base_url=url, headers=headers, timeout=20) as client:
        body = client.post("/v1/card/read", json={}).json()
    holder = body["card"]["holder"]
    print(
        f"   POST /v1/card/read -> code {body['code']}: {holder['name']} {holder['ssn']} (masked)"
    )


def run(stage: Stage) -> None:
    print("=== Web HIS page through sscard serve / 网页HIS经本地读卡服务读卡 ===")
    from sscard.serve import PcscBackend, ReaderService, ServeConfig, ServiceThread, SimBackend
    from sscard.serve.backend import Backend

    if not PAGE_DIR.is_dir():
        print(f"   skipped: the sample page {PAGE_DIR} is not here (run from a checkout)")
        return
    card = build_card(new_card("shanghai", generation=3, seed=2026))
    backend: Backend
    if stage.via == "pcscd":
        pcscd: Any = stage._pcscd
        backend = PcscBackend(ignore=[pcscd.reader_names[1]])

        def insert() -> None:
            stage.present(card, slot=0).close()  # the card stays in the slot

    else:
        sim = SimBackend(["sscard demo slot 00"])
        backend = sim

        def insert() -> None:
            sim.insert("sscard demo slot 00", card)

    handler = functools.partial(_Quiet, directory=str(PAGE_DIR))
    pages = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=pages.serve_forever, daemon=True).start()
    origin = f"http://127.0.0.1:{pages.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = ServeConfig(keys="test", audit_db=Path(tmp) / "audit.sqlite3")
            service = ReaderService(config.with_origins([origin]), backend)
            with ServiceThread(service) as running:
                print(f"   service {running.url}/v1/ (readers: {stage.via}); page {origin}")
                missing = _browser_missing()
                if missing:
                    print(f"   no browser: {missing}; the same API over HTTP:")
                    _over_http(running.url, origin, insert)
                else:
                    _in_browser(f"{origin}/index.html?service={running.url}", insert)
                rows = service._audit.query() if service._audit else []
                print(f"   audit rows: {[(r.scenario, r.subject_name) for r in rows]}")
    finally:
        pages.shutdown()
        pages.server_close()
        stage.remove(0)
