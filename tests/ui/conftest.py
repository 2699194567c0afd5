"""Headless Chromium for the browser tests: Debian's chromium (apt-get installs it when missing), driven by Playwright.

No browser is ever downloaded: ``playwright install`` is not run; Playwright launches /usr/bin/chromium instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
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


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The path of Debian's chromium, installed on first use where this runs as root; skips where it cannot be had."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        pytest.skip(f"the playwright package is not importable ({e}): pip install -c constraints.txt -e '.[test]'")
    if not CHROMIUM.exists():
        reason = _install_chromium()
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
