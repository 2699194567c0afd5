"""Every shell command and Python snippet of README.md and PLUGINS.md, run as written in a fresh folder.

Commands run in document order through bash, in a fresh folder and a fresh virtualenv (where `pip install -e`
of a scaffolded plugin lands; lab and its dependencies are visible in it), with the documented smoke mode
``LAB_SMOKE=1`` so every training is a few hundred steps: see tests/doc_commands.py for the rules. Each must exit
0 (a command whose comment says Ctrl-C runs with its own budget, is interrupted once it has logged a metric
and must exit 130), print no warning or traceback, and have
the effect its text promises (a file written, a run FINISHED, a model registered, ...). The scaffolded packages'
own READMEs are run the same way in tests/plugins/test_packages.py.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from doc_commands import (
    Command,
    Outcome,
    Terminal,
    independent_parts,
    parse,
    printed_run_ids,
    user_venv,
    with_run_ids,
)

ROOT = Path(__file__).parents[1]
SETUP = "python3 -m venv .venv"  # README's two set-up commands: what CI itself runs on a fresh clone (.ci/run)
FOREIGN = re.compile(r"Traceback|Warning|WARN|INFO |DEBUG |DeprecationWarning|site-packages")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_command(terminal: Terminal, command: Command, printed: list[str]) -> Outcome:
    text = with_run_ids(command.text, terminal.cwd / "mlflow", printed)
    if text.startswith("lab ui"):
        port = re.search(r"--port (\d+)", text)
        if port is None:  # the documented default port may be taken on this machine: same command, free port
            port_number = free_port()
            text = f"{text} --port {port_number}"
        else:
            port_number = int(port.group(1))
        return terminal.serve(text, f"http://127.0.0.1:{port_number}/health")
    if "Ctrl-C" in command.comment:
        return terminal.interrupt(text)
    return terminal.run(text)


def check_effect(command: Command, outcome: Outcome, terminal: Terminal) -> None:
    """What the command's text promises, beyond exit code 0."""
    text, out = command.text, outcome.out
    where = f"{command.source}: {text}\n{out[-1500:]}\n{outcome.err[-1500:]}"
    if "Ctrl-C" in command.comment:
        assert outcome.code == 130 and re.search(r"checkpoint step-\d+ saved, run marked KILLED", outcome.err), where
        return
    assert outcome.code == 0, where
    if text.startswith("lab") or "python -c" in text:  # pip and pytest speak for themselves
        # The UI's web server logs its requests (INFO lines); a warning or a traceback is foreign everywhere.
        foreign_lines = re.compile(r"Traceback|Warning|WARN") if text.startswith("lab ui") else FOREIGN
        foreign = [line for line in outcome.err.splitlines() if foreign_lines.search(line)]
        assert not foreign, f"{where}\nlines that are not lab's: {foreign}"
    if re.match(r"lab (run|rerun) ", text):
        several = re.search(r"=\S*,|range\(", text)
        assert ("runs finished" if several else "FINISHED in") in out, where
    if text.startswith("lab sweep"):
        assert "trials done" in out, where
    if text.startswith("lab eval"):
        assert re.search(r"(over \d+ episodes|on the validation split)", out), where
    for name in re.findall(r"\bout=(\S+)", text):
        written = terminal.cwd / name
        assert written.is_file() and written.stat().st_size > 0, where
    if text.startswith("lab promote"):
        assert "registered run" in out, where
    if text.startswith("lab plugins") and "agent" in command.comment:  # e.g. "mine  agent  lab-mine  0.1.0"
        assert all(word in out for word in command.comment.split()), where
    if text.startswith("lab new plugin"):
        assert (terminal.cwd / text.split()[3]).is_dir(), where
    if "python -m pytest" in text:
        assert " passed" in out and " failed" not in out, where
    if text.startswith("lab envs --json"):
        assert any(row["id"] == "CartPole-v1" for row in json.loads(out)), where
    if text.startswith("lab store"):
        assert "tracking URI: sqlite:///" in out, where
    if "prompt=" in text:
        assert out.startswith(re.search(r'prompt="([^"]*)"', text).group(1)), where
    if "mlflow.pyfunc.load_model" in text:
        assert re.fullmatch(r"\[\d+\]\s*", out), where  # one action for the one observation
    if text.startswith("lab ui"):
        assert "HTTP 200" in out, where


def run_part(commands: list[Command], home: Path, bin_dir: Path) -> list[str]:
    """Run ``commands`` in order from ``home``; returns the commands run."""
    terminal = Terminal(home, bin_dir)
    done: dict[tuple[Path, str], list[str]] = {}  # a command already run from the same folder: its run ids
    printed: list[str] = []  # run ids, in the order the commands printed them
    for command in commands:
        key = (terminal.cwd, command.text)
        if key in done:  # run once; a reader would reuse the run it made (e.g. for the next <run id>)
            printed += done[key]
            continue
        started = time.monotonic()
        outcome = run_command(terminal, command, printed)
        print(f"{time.monotonic() - started:6.1f} s  {command.source}  {command.text}", flush=True)  # pytest -s
        check_effect(command, outcome, terminal)
        done[key] = printed_run_ids(outcome.out)
        printed += done[key]
    return [text for _, text in done]


def test_the_set_up_commands_are_what_ci_runs():
    setup = [c.text for c in parse(ROOT / "README.md").commands if c.text.startswith(SETUP)]
    assert len(setup) == 2, "README opens with the set-up-and-run command and the test command"
    assert setup[1] in (ROOT / ".ci" / "run").read_text()
    assert setup[0].endswith("lab run plugin=dqn env=CartPole")


def run_document(path: Path, root: Path, bin_dir: Path, lanes: int = 2) -> list[str]:
    """Every command of ``path``, its independent parts side by side on ``lanes`` lanes, each part in a fresh
    folder under ``root`` holding a copy of the clone's examples/ (README commands run from the clone's root)."""
    from concurrent.futures import ThreadPoolExecutor

    parts = independent_parts([c for c in parse(path).commands if not c.text.startswith(SETUP)])
    homes = []
    for number in range(len(parts)):
        homes.append(root / f"part-{number}")
        shutil.copytree(ROOT / "examples", homes[-1] / "examples", ignore=shutil.ignore_patterns("lab-reinforce"))
    with ThreadPoolExecutor(lanes) as pool:
        done = pool.map(run_part, parts, homes, [bin_dir] * len(parts))
        return [text for texts in done for text in texts]


@pytest.mark.slow
def test_every_readme_command_works_as_written(tmp_path):
    done = run_document(ROOT / "README.md", tmp_path / "home", user_venv(tmp_path / "venv"))
    assert len(done) >= 60, done


@pytest.mark.slow
def test_every_plugins_md_command_and_snippet_works_as_written(tmp_path):
    bin_dir = user_venv(tmp_path / "venv")
    done = run_document(ROOT / "PLUGINS.md", tmp_path / "home", bin_dir)
    assert done[0].startswith("lab new plugin lab-myagent")
    registration, conformance, judging = parse(ROOT / "PLUGINS.md").snippets
    # The registration snippet, as a single-file plugin: `lab plugins` lists what it registers.
    plugins_dir = tmp_path / "snippet-plugin"
    plugins_dir.mkdir()
    (plugins_dir / "myagent_snippet.py").write_text(registration.code)
    # Its factory names lab_myagent.agent:build, which `lab plugins` finds (without importing it): a stand-in.
    stub = tmp_path / "stub" / "lab_myagent"
    stub.mkdir(parents=True)
    (stub / "__init__.py").write_text("")
    (stub / "agent.py").write_text("def build(context):\n    raise NotImplementedError\n")
    listed = Terminal(tmp_path, Path(sys.executable).parent).run(
        f"PYTHONPATH={stub.parent} lab --plugins-dir {plugins_dir} plugins --json")
    assert listed.code == 0, listed.err
    rows = {row["name"]: row for row in json.loads(listed.out)}
    assert rows["myagent"]["status"] == "ok" and rows["myagent"]["kind"] == "agent", rows.get("myagent")
    # The conformance snippet, as a plugin's test file, against the package installed by the commands above.
    (tmp_path / "test_snippet.py").write_text(conformance.code)
    tests = Terminal(tmp_path, bin_dir).run("python -m pytest -q -p no:cacheprovider test_snippet.py")
    assert tests.code == 0 and "7 passed" in tests.out, tests.out[-3000:]
    # The judging snippet, as a script: its own assertions hold and it prints the metrics.
    (tmp_path / "judge_snippet.py").write_text(judging.code)
    judged = Terminal(tmp_path, bin_dir).run("python judge_snippet.py")
    assert judged.code == 0 and "mmd2_ceiling" in judged.out, judged.err[-3000:]
