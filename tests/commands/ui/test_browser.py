"""The MLflow UI that `lab ui` serves, as a user sees it in a browser (headless Chromium driven by Playwright).

One store holds an agent run (dqn on CartPole) and a generator run (vae on moons); `lab ui` serves it on a free
loopback port, and each test walks the UI from the experiments list by clicking, asserts on what the page shows and
saves a screenshot of it in its tmp_path.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from lab import cli

pytestmark = pytest.mark.slow

AGENT = ("run", "plugin=dqn", "env=CartPole", "steps=300", "eval_every=150", "eval_episodes=2", "progress=false",
         "run_name=agent-run")
GENERATOR = ("run", "plugin=vae", "data=moons", "steps=2000", "eval_every=1000", "eval_samples=200", "iw_samples=10",
             "progress=false", "run_name=vae-run")
AGENT_EXPERIMENT, GENERATOR_EXPERIMENT = "dqn-CartPole-v1", "vae-moons"
TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 800}
# The UI remembers in localStorage which sidebar a user chose and whether the Assistant panel is open; start every
# page as a user who picked "Model training" and closed the Assistant (it would otherwise cover a third of the page).
REMEMBERED = """
localStorage.setItem('mlflow.workflowType_v1', JSON.stringify('machine_learning'));
localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');
localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');
"""


@dataclass
class UI:
    url: str
    store: Path  # the ./mlflow folder `lab ui` serves

    def run(self, name: str):
        from mlflow import MlflowClient

        client = MlflowClient(f"sqlite:///{self.store / 'mlflow.db'}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        (run,) = client.search_runs(experiments, filter_string=f"attributes.run_name = '{name}'")
        return client, run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_run(*args: str) -> None:
    try:
        code = cli.main(list(args))
    except SystemExit as e:
        code = e.code
    assert code == 0, f"lab {' '.join(args)} failed with {code}"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory, empty_store: Path, feature_cache: Path) -> Iterator[UI]:
    """`lab ui` on a free loopback port, over a store with one agent run and one generator run."""
    work = tmp_path_factory.mktemp("ui")
    store = work / "mlflow"
    store.mkdir()
    shutil.copy(empty_store, store / "mlflow.db")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    # One uvicorn worker and no job runner (its huey consumers): the server starts in seconds, not half a minute.
    env.update(MLFLOW_WORKERS="1", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    log = work / "ui.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads, which would stall the server once full
        process = subprocess.Popen([sys.executable, "-m", "lab.cli", "ui", "--port", str(port)], cwd=work, env=env,
                                   stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        with pytest.MonkeyPatch.context() as mp:  # the runs are made while the server starts
            mp.chdir(work)
            mp.delenv("MLFLOW_TRACKING_URI", raising=False)
            lab_run(*AGENT)
            lab_run(*GENERATOR)
        url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(url + "/", timeout=5).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"lab ui did not serve {url}:\n{log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.25)
        yield UI(url, store)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


@pytest.fixture
def page(browser, ui: UI) -> Iterator:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(REMEMBERED)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(ui.url + "/#/experiments")
    try:
        yield page
    finally:
        context.close()


def screenshot(page, path: Path) -> None:
    from PIL import Image

    page.screenshot(path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000, path
    with Image.open(path) as image:
        assert image.size == (VIEWPORT["width"], VIEWPORT["height"])


def open_run(page, experiment: str, run: str) -> None:
    """From the experiments list, click the experiment, then its run."""
    from playwright.sync_api import expect

    page.get_by_role("link", name=experiment, exact=True).click()
    page.get_by_role("link", name=run, exact=True).click()
    expect(page.get_by_role("heading", name=run, exact=True)).to_be_visible()


def test_experiments_list_shows_both_experiments(page, tmp_path: Path):
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Experiments")).to_be_visible()
    for name in (AGENT_EXPERIMENT, GENERATOR_EXPERIMENT):
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    screenshot(page, tmp_path / "experiments.png")


def test_agent_run_page_shows_its_params_and_metrics(page, ui: UI, tmp_path: Path):
    from playwright.sync_api import expect

    page.get_by_role("link", name=AGENT_EXPERIMENT, exact=True).click()
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    expect(page.get_by_role("link", name="agent-run", exact=True)).to_be_visible()
    expect(page.get_by_text("1 matching run")).to_be_visible()
    screenshot(page, tmp_path / "experiment.png")

    page.get_by_role("link", name="agent-run", exact=True).click()
    expect(page.get_by_role("heading", name="agent-run", exact=True)).to_be_visible()
    _, run = ui.run("agent-run")
    expect(page.get_by_text(run.info.run_id)).to_be_visible()
    expect(page.get_by_text("Finished", exact=True)).to_be_visible()
    rows = page.get_by_role("row")

    def row(key: str):
        return rows.filter(has=page.get_by_role("cell", name=key, exact=True))

    expect(page.get_by_text(f"Metrics ({len(run.data.metrics)})")).to_be_visible()
    for key in ("eval/mean_return", "eval/std_return", "best/score"):
        expect(row(key)).to_be_visible()
        shown = row(key).get_by_role("cell").nth(1).inner_text()
        assert float(shown) == pytest.approx(run.data.metrics[key]), (key, shown)
    expect(page.get_by_text(f"Parameters ({len(run.data.params)})")).to_be_visible()
    for key, value in {"plugin": "dqn", "env": "CartPole-v1", "steps": "300", "run_name": "agent-run"}.items():
        expect(row(key).get_by_role("cell").nth(1)).to_have_text(value)
    expect(page.get_by_text("lab.plugin.kind: agent")).to_be_visible()  # a tag
    screenshot(page, tmp_path / "run.png")


def test_metric_chart_is_drawn_with_every_logged_value(page, ui: UI, tmp_path: Path):
    from playwright.sync_api import expect

    client, run = ui.run("agent-run")
    history = client.get_metric_history(run.info.run_id, "eval/mean_return")
    assert len(history) >= 2
    open_run(page, AGENT_EXPERIMENT, "agent-run")
    page.get_by_role("tab", name="Model metrics").click()
    page.get_by_placeholder("Search metric charts").fill("mean_return")
    card = page.get_by_test_id("experiment-view-compare-runs-card").filter(
        has=page.locator('h4[title="eval/mean_return"]'))
    expect(card).to_be_visible()
    expect(card).to_contain_text("agent-run (eval/mean_return)")  # the legend
    expect(card.locator(".js-plotly-plot svg.main-svg").first).to_be_visible()
    # the line (drawn twice: smoothed in front, the raw values faintly behind) and one marker per logged value
    line = card.locator("g.trace path.js-line").first
    expect(line).to_have_attribute("d", re.compile(r"^M[\d.,-]+(L[\d.,-]+)+$"))
    expect(card.locator("g.trace path.point")).to_have_count(len(history))
    expect(card.get_by_text("Step", exact=True)).to_be_visible()  # the x axis title
    screenshot(page, tmp_path / "chart.png")


def test_generator_image_artifact_is_rendered(page, ui: UI, tmp_path: Path):
    from PIL import Image
    from playwright.sync_api import expect

    _, run = ui.run("vae-run")
    on_disk = Path(unquote(urlparse(run.info.artifact_uri).path)) / "samples.png"
    with Image.open(on_disk) as image:
        width, height = image.size
    open_run(page, GENERATOR_EXPERIMENT, "vae-run")
    page.get_by_role("tab", name="Artifacts").click()
    for entry in ("images", "model", "config.yaml", "learning_curve.png"):
        expect(page.get_by_text(entry, exact=True).first).to_be_visible()
    page.get_by_text("samples.png", exact=True).click()
    image = page.get_by_role("img", name="samples.png", exact=True)
    expect(image).to_be_visible()
    image.evaluate("img => img.decode()")  # resolves once the PNG is loaded and decoded, rejects if it cannot be
    assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [width, height]
    box = image.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100, box
    screenshot(page, tmp_path / "artifact.png")
