"""Headless Chromium for the browser tests: Debian's chromium (apt-get installs it when missing), driven by Playwright.

No browser is ever downloaded: ``playwright install`` is not run; Playwright launches /usr/bin/chromium instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's services, which a closed network refuses.
# Playwright adds --headless and a fresh, empty --user-data-dir of its own to every launch.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
APT_TIMEOUT_S = 1200


def _apt_get(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", *args], env=env, capture_output=True, text=True,
                          timeout=APT_TIMEOUT_S, check=False)


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    """apt-get's last error ("E: ..."), else the last line it wrote."""
    for text in (result.stderr, result.stdout):
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("E:")]
        if errors or lines:
            return (errors or lines)[-1]
    return f"exit status {result.returncode}"


def _install_chromium() -> str | None:
    """Install Debian's chromium; None on success, else a one-line reason."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "not root, so apt-get cannot install it (run: apt-get install -y --no-install-recommends chromium)"
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this machine"
    install = ("install", "-y", "--no-install-recommends", "chromium")
    try:
        result = _apt_get(*install)
        if result.returncode != 0:  # a stale or empty package index: refresh it once and retry
            _apt_get("update")
            result = _apt_get(*install)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"apt-get failed: {e}"
    if result.returncode != 0:
        return f"apt-get install chromium failed: {_last_line(result)}"
    if not CHROMIUM.exists():
        return f"apt-get installed chromium but {CHROMIUM} is missing"
    return None


class _Installation:
    """apt-get can take minutes on a fresh machine: it starts in a thread as soon as a browser test is collected,
    and runs while the rest of the suite does."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.reason: str | None = None

    def start(self) -> None:
        if self.thread is None and not CHROMIUM.exists():
            self.thread = threading.Thread(target=self._install, name="install-chromium", daemon=True)
            self.thread.start()

    def _install(self) -> None:
        self.reason = _install_chromium()

    def wait(self) -> str | None:
        """None once chromium is there, else why it is not."""
        self.start()
        if self.thread is not None:
            self.thread.join()
        return self.reason


_installation = _Installation()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if any(Path(str(item.fspath)).parent == Path(__file__).parent for item in items):
        _installation.start()


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The path of Debian's chromium, installed where this runs as root; skips where it cannot be had."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        pytest.skip(f"the playwright package is not importable ({e}): pip install -c constraints.txt -e '.[test]'")
    reason = _installation.wait()
    if reason is not None:
        pytest.skip(f"Chromium is not installed and could not be installed: {reason}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator:
    """One headless Chromium for the session (each test opens its own context: fresh cookies and storage)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
