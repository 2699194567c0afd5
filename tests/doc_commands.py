"""The shell commands and Python snippets of a markdown document, and a way to run them as a user would.

A *command block* is an indented (4 spaces) code block whose first line starts with a command (``lab``,
``python``, ``cd``, ``pip``, or an environment assignment before one); ``python`` fenced blocks are Python
snippets. Lines ending in ``\\`` continue on the next line; ``# ...`` after a command is a comment. Other indented
blocks (a folder layout, say) are not commands.

Commands run through bash, one at a time, in a folder of their own with LAB_SMOKE=1 (the documented smoke mode:
tiny budgets); ``cd`` carries over to the next command of the same document, as in a terminal. ``<run id>`` and
``<id>`` are replaced by the newest run in that folder's store that fits the command (an agent for ``lab play``,
a generator for ``lab sample``, a language model for ``prompt=``, a run with a checkpoint for ``resume=``), the
way a reader pastes the id the previous run printed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("lab", "python", "python3", "cd", "pip")
PLACEHOLDER = re.compile(r"<(run id|id)>")
SMOKE = {"LAB_SMOKE": "1"}


@dataclass
class Command:
    text: str
    """The command as written, continuation lines joined, the trailing comment removed."""
    comment: str
    source: str
    """``FILE:LINE`` of its first line."""
    block: int = 0
    """Which command block of the document it is in (0, 1, ...)."""


@dataclass
class Snippet:
    code: str
    source: str


@dataclass
class Document:
    commands: list[Command] = field(default_factory=list)
    snippets: list[Snippet] = field(default_factory=list)


def strip_comment(line: str) -> tuple[str, str]:
    """``lab runs   # recent runs`` -> (``lab runs``, ``recent runs``); a ``#`` inside quotes is kept."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip(), line[i + 1:].strip()
    return line.rstrip(), ""


def is_command(line: str) -> bool:
    line = re.sub(r"^(\s*[A-Z_][A-Z0-9_]*=(\$\([^)]*\)|\S+)\s+)+", "", line)  # VAR=value before the command
    words = line.split()
    return bool(words) and words[0] in COMMANDS


def parse(path: Path, text: str | None = None) -> Document:
    """Every command block and Python snippet of the markdown file ``path`` (or of ``text``)."""
    lines = (path.read_text() if text is None else text).splitlines()
    document = Document()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```python"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            document.snippets.append(Snippet("\n".join(lines[i + 1:end]), f"{path.name}:{i + 2}"))
            i = end + 1
            continue
        if line.startswith("```"):  # another language (toml, ...): not run
            i = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```")) + 1
            continue
        indented = line.startswith("    ") and (i == 0 or not lines[i - 1].strip())
        if not (indented and is_command(line[4:])):
            i += 1
            continue
        block = len({command.block for command in document.commands})
        while i < len(lines) and lines[i].startswith("    "):
            start = i
            text_, comment = strip_comment(lines[i][4:])
            while text_.endswith("\\"):  # a continued line
                i += 1
                more, more_comment = strip_comment(lines[i][4:])
                text_, comment = text_[:-1].rstrip() + " " + more.strip(), comment or more_comment
            i += 1
            if not text_:  # a comment line continuing the previous command's comment
                continue
            if not is_command(text_):
                raise ValueError(f"{path.name}:{start + 1}: {text_!r} in a command block is not a command")
            document.commands.append(Command(text_, comment, f"{path.name}:{start + 1}", block))
    return document


def independent_parts(commands: list[Command]) -> list[list[Command]]:
    """The commands in parts that can run apart, each in a fresh folder: a command block is a part of its own
    unless it uses what the block before it made (a ``<run id>`` before any ``lab run`` of its own, or a
    registered ``models:/`` name), in which case it joins that block's part."""
    parts: list[list[Command]] = []
    for block in sorted({command.block for command in commands}):
        members = [command for command in commands if command.block == block]
        makes_runs = False
        needs_earlier = False
        for command in members:
            if PLACEHOLDER.search(command.text) and not makes_runs or "models:/" in command.text and not any(
                    "lab promote" in other.text for other in members):
                needs_earlier = True
            makes_runs = makes_runs or command.text.startswith("lab run ")
        if needs_earlier and parts:
            parts[-1].extend(members)
        else:
            parts.append(members)
    return parts


# ---------------------------------------------------------------------------------------------- running


@dataclass
class Outcome:
    code: int
    out: str
    err: str


class Terminal:
    """A user's shell in ``home``: PATH starts with ``bin_dir`` (where ``lab``, ``python`` and ``pip`` are)."""

    def __init__(self, home: Path, bin_dir: Path) -> None:
        self.home = home
        self.cwd = home
        self.bin_dir = bin_dir
        (home / ".cwd").parent.mkdir(parents=True, exist_ok=True)

    def environment(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LAB_", "PYTEST_", "PIP_"))}
        keep["LAB_CACHE_DIR"] = os.environ.get("LAB_CACHE_DIR", "")
        # pip: the fresh environment sees lab's dependencies already; build offline with its setuptools.
        pip = {"PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        return {**keep, **SMOKE, **pip, "PATH": f"{self.bin_dir}:{keep.get('PATH', '')}", "COLUMNS": "200"}

    def run(self, text: str, timeout: float = 600) -> Outcome:
        """Run ``text`` in bash from the current folder; a ``cd`` in it moves this terminal."""
        cwd_file = self.home / ".cwd"
        script = f"{text}\nstatus=$?; pwd > {shlex.quote(str(cwd_file))}; exit $status"
        result = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.environment(), capture_output=True,
                                text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if cwd_file.exists():
            self.cwd = Path(cwd_file.read_text().strip())
            cwd_file.unlink()
        return Outcome(result.returncode, result.stdout, result.stderr)

    def interrupt(self, text: str, timeout: float = 600) -> Outcome:
        """Start the training command ``text`` (its own budget: a user presses Ctrl-C in the middle of a long run,
        so not in smoke mode) and press Ctrl-C (SIGINT) once it is training: once it has logged a metric."""
        environment = {k: v for k, v in self.environment().items() if k not in SMOKE}
        process = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=self.cwd, env=environment,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while not logged_a_metric(self.cwd / "mlflow" / "mlflow.db") and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=timeout)
        return Outcome(process.returncode, out, err)

    def serve(self, text: str, url: str, timeout: float = 120) -> Outcome:
        """Start a server command, wait until ``url`` answers 200, then stop it with SIGTERM (uvicorn prints a
        traceback of its own when Ctrl-C lands during its start-up; see the closing note of issue 22)."""
        process = subprocess.Popen(["bash", "-c", f"exec {text}"], cwd=self.cwd, env=self.environment(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        deadline, status = time.monotonic() + timeout, 0
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    status = response.status
                    break
            except OSError:
                time.sleep(0.5)
        os.killpg(process.pid, signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
        return Outcome(0 if status == 200 else 1, out + f"\nHTTP {status} from {url}", err)


def logged_a_metric(database: Path) -> bool:
    """Whether any run of the sqlite store at ``database`` has logged a metric yet."""
    import sqlite3

    if not database.is_file():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as store:
            return store.execute("SELECT 1 FROM metrics LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # not created yet, or locked by a writer: look again later
        return False


def newest_run(store: Path, command: str, printed: list[str]) -> str:
    """The id of the newest run in ``store`` that fits ``command`` (see the module doc): of those whose id a
    command printed (``printed``, oldest first), else of all runs in the store."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, order_by=["attributes.start_time DESC"], max_results=500)
    runs = [run for run in runs if "lab.plugin" in run.data.tags]  # not the parents of several runs or sweeps
    by_id = {run.info.run_id: run for run in runs}
    runs = [by_id[run_id] for run_id in reversed(printed) if run_id in by_id] + runs

    def fits(run) -> bool:
        tags = run.data.tags
        if "resume=" in command:
            return "lab.checkpoint" in tags
        if "prompt=" in command:
            return tags.get("lab.target") == "pydocs"
        if command.startswith("lab sample"):
            return tags.get("lab.plugin.kind") == "generator"
        if command.startswith("lab play"):
            return tags.get("lab.plugin.kind") == "agent" and run.info.status == "FINISHED"
        return run.info.status == "FINISHED"

    fitting = [run.info.run_id for run in runs if fits(run)]
    assert fitting, f"no run in {store} fits {command!r}"
    return fitting[0]


def with_run_ids(command: str, store: Path, printed: list[str]) -> str:
    if not PLACEHOLDER.search(command):
        return command
    return PLACEHOLDER.sub(lambda _: newest_run(store, command, printed), command)


def printed_run_ids(out: str) -> list[str]:
    """The run ids a command printed at its end (``run id:     <32 hex digits>``)."""
    return re.findall(r"run id:\s+([0-9a-f]{32})", out)


def user_venv(root: Path) -> Path:
    """A brand-new virtualenv that sees lab and its dependencies the way a user's environment with lab does;
    returns its bin folder, with ``python``, ``lab`` and ``pip`` that act on it. Packages pip-installed there
    never reach the project's own environment; nothing is downloaded."""
    import sys
    import sysconfig

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site_packages = Path(subprocess.check_output(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip())
    host = sysconfig.get_paths()["purelib"]
    (site_packages / "lab-host.pth").write_text(f"import site; site.addsitedir({host!r})\n")
    launchers = {"lab": f'exec {python} -m lab.cli "$@"',
                 # pip from the project's environment, acting on this one (a --without-pip venv has none)
                 "pip": f'exec {sys.executable} -m pip --python {python} "$@"'}
    for name, body in launchers.items():
        launcher = root / "bin" / name
        launcher.write_text(f"#!/bin/sh\n{body}\n")
        launcher.chmod(0o755)
    return root / "bin"
