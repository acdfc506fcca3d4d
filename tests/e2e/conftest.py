"""Browser tests: the real app served on 127.0.0.1 from a thread, driven by Playwright in Debian's
chromium (installed by `make browser`; Playwright never downloads a browser here).

Each page visited is checked at 1366×768 and at a 390×844 phone for horizontal scrolling, and a
screenshot of each step is saved under test-artifacts/e2e/.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp
import pytest
from werkzeug.serving import make_server

from engine import clock
from engine.config import Settings
from engine.migrate import upgrade
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("MOTCUA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
# Chromium flags for a closed network and a root user (see the machine notes in README).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update", "--disable-dev-shm-usage"]
PASSWORD = "Demo@12345"


@contextmanager
def serve_demo(path: Path, *, before_seed: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
    """The app with the demo data on its own SQLite database, served on a free local port."""
    from backoffice.app import create_app
    from scripts.seed import seed_demo

    settings = Settings.from_env({}, env="test", database_url=f"sqlite:///{path}", sandbox=True)
    upgrade(settings)
    if before_seed is not None:
        before_seed()
    app = create_app(settings)
    ext = app.extensions["motcua"]
    seed_demo(ext.factory, ext.registry, lease=timedelta(seconds=30), secret_key=settings.secret_key)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"url": f"http://127.0.0.1:{server.server_port}", "app": app}
    finally:
        server.shutdown()
        ext.engine.dispose()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with serve_demo(tmp_path_factory.mktemp("e2e") / "e2e.db") as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


class Officer:
    """One person at their own browser (own cookies), with helpers the tests share."""

    def __init__(self, browser: Any, base: str, name: str):
        self.base = base
        self.name = name
        self.context = browser.new_context(viewport=DESKTOP, locale="vi-VN")
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # A page's own 4xx is part of a test (a form with errors); a broken asset never is.
        self.page.on("response", lambda r: self.errors.append(f"{r.status} {r.url}")
                     if r.status >= 400 and r.request.resource_type != "document" else None)
        self.page.on("dialog", lambda dialog: dialog.accept())

    def goto(self, path: str) -> None:
        self.page.goto(self.base + path)

    def login(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("#login-submit")

    def fits(self, label: str) -> None:
        """No horizontal scrolling at the office screen nor on a phone; a screenshot of each."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for size_name, size in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(size)
            self.page.wait_for_load_state("load")
            overflow = self.page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            self.page.screenshot(path=str(ARTIFACTS / f"{self.name}-{label}-{size_name}.png"), full_page=True)
            assert overflow <= 0, f"{label}: {overflow}px of horizontal scrolling at {size['width']}×{size['height']}"
        self.page.set_viewport_size(DESKTOP)
        assert not self.errors, f"JavaScript errors on {label}: {self.errors}"

    def close(self) -> None:
        self.context.close()


def totp_now(secret: str) -> str:
    """The code an authenticator app shows now (the server's clock is this process's clock)."""
    return pyotp.TOTP(secret).at(clock.now())


def text_of(page: Any, selector: str) -> str:
    return re.sub(r"\s+", " ", page.inner_text(selector)).strip()
