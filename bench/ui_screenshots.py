"""Screenshots of the MLflow UI that `lab ui` serves, for the README.

Trains two small runs into a fresh store in a temporary directory (ppo on CartPole and vae on moons, well under a minute
on 2 CPU cores), serves that store with `lab ui` on a free loopback port and photographs it in headless Chromium:

    docs/images/mlflow-run.png       the agent run's "Model metrics" tab: its evaluation curves
    docs/images/mlflow-artifact.png  the generator run's samples.png artifact in the artifact browser

Chromium is Debian's (apt-get install -y --no-install-recommends chromium), driven by Playwright as
tests/commands/ui does; nothing is downloaded (never run `playwright install`). Usage:

    .venv/bin/python bench/ui_screenshots.py [--out docs/images] [--keep DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AGENT = ["plugin=ppo", "env=CartPole", "steps=40000", "eval_every=2000", "eval_episodes=10",
         "stop_when_solved=false", "run_name=ppo-cartpole"]
GENERATOR = ["plugin=vae", "data=moons", "steps=300000", "eval_every=60000", "run_name=vae-on-moons"]
VIEWPORT = {"width": 1280, "height": 800}
MAX_BYTES = 300_000
# Start as a user who chose the "Model training" sidebar and closed the Assistant panel (the UI keeps both here).
REMEMBERED = """
localStorage.setItem('mlflow.workflowType_v1', JSON.stringify('machine_learning'));
localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
"""


def lab(work: Path, *args: str, **popen) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(MLFLOW_WORKERS="1", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")  # a server that starts in seconds
    return subprocess.Popen([sys.executable, "-m", "lab.cli", *args], cwd=work, env=env, **popen)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_png(png: bytes, path: Path) -> None:
    """Write a screenshot losslessly compressed, or in 256 colours where that is still over MAX_BYTES."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.save(path, optimize=True)
    if path.stat().st_size > MAX_BYTES:
        image.quantize(256).save(path, optimize=True)
    print(f"{path}: {image.size[0]}x{image.size[1]}, {path.stat().st_size // 1024} KB")


def photograph(url: str, out: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(REMEMBERED)
        page = context.new_page()

        def open_run(experiment: str, run: str) -> None:
            page.goto(url + "/#/experiments")
            page.get_by_role("link", name=experiment, exact=True).click()
            page.get_by_role("link", name=run, exact=True).click()
            expect(page.get_by_role("heading", name=run, exact=True)).to_be_visible()

        open_run("ppo-CartPole-v1", "ppo-cartpole")
        page.get_by_role("tab", name="Model metrics").click()
        page.get_by_placeholder("Search metric charts").fill("return")
        page.evaluate("document.activeElement.blur()")
        card = page.get_by_test_id("experiment-view-compare-runs-card").filter(
            has=page.locator('h4[title="eval/mean_return"]'))
        expect(card.locator("g.trace path.point").first).to_be_visible()
        page.wait_for_timeout(1000)  # let the charts finish their transitions
        save_png(page.screenshot(), out / "mlflow-run.png")

        open_run("vae-moons", "vae-on-moons")
        page.get_by_role("tab", name="Artifacts").click()
        page.get_by_text("samples.png", exact=True).click()
        image = page.get_by_role("img", name="samples.png", exact=True)
        expect(image).to_be_visible()
        image.evaluate("img => img.decode()")
        save_png(page.screenshot(), out / "mlflow-artifact.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "images")
    parser.add_argument("--keep", type=Path, default=None,
                        help="train into (and keep) this folder, not a temporary one; reuse its runs if it has them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lab-ui-screenshots-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        for overrides in (AGENT, GENERATOR) if not (work / "mlflow" / "mlflow.db").exists() else ():
            if lab(work, "run", *overrides, "progress=false", stdout=subprocess.DEVNULL).wait() != 0:
                sys.exit(f"lab run {' '.join(overrides)} failed")
        port = free_port()
        server = lab(work, "ui", "--port", str(port), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                     start_new_session=True)
        try:
            url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(url + "/", timeout=5).read()
                    break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        sys.exit("lab ui did not start")
                    time.sleep(0.25)
            args.out.mkdir(parents=True, exist_ok=True)
            photograph(url, args.out)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
