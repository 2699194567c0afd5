"""`lab ui` serves the MLflow UI for the same store: on the loopback interface as is; beyond it only behind MLflow's
basic-auth app (or --insecure), for the Host headers of the bound address and localhost."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from mlflow import MlflowClient

from lab.commands import ui
from lab.commands.ui import AuthStore, default_allowed_hosts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_store_on_loopback(store: Path, lab, with_toy_plugin):
    assert lab("run", "plugin=toy", "env=Toy", "steps=10", "progress=false").code == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    process = subprocess.Popen([sys.executable, "-m", "lab.cli", "ui", "--port", str(port)], cwd=store.parent,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        body, deadline = "", time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                if process.poll() is not None:
                    raise AssertionError(process.stdout.read().decode()) from None
                time.sleep(0.5)
        assert "MLflow" in body
        api = urllib.request.urlopen(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search"
                                     "?max_results=10", timeout=10).read().decode()
        assert "toy-Toy-v0" in api, "the UI reads the store lab run wrote"
        with socket.socket() as s:  # not on any other interface
            other = socket.gethostbyname(socket.gethostname())
            if not other.startswith("127."):
                assert s.connect_ex((other, port)) != 0
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


# ------------------------------------------------------------------------------------ beyond loopback (issue 15)
# One `lab ui --host 0.0.0.0` for the module: its first start creates the admin user and prints the password.

CHECKOUT = Path(__file__).parents[2]
PASSWORD_LINE = re.compile(r"lab ui: authentication on: user admin, password (\S+) \(shown only this once")


@dataclass
class ExposedUI:
    port: int
    folder: Path  # the working directory: its ./mlflow/ is the store
    output: list[str]  # the server's stdout and stderr, lines so far
    password: str
    run_id: str  # a RUNNING run made before the server started

    @property
    def store(self) -> MlflowClient:
        return MlflowClient(f"sqlite:///{self.folder / 'mlflow' / 'mlflow.db'}")


def _read_lines(stream, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory, empty_store: Path) -> Iterator[ExposedUI]:
    folder = tmp_path_factory.mktemp("exposed-ui")
    (folder / "mlflow").mkdir()
    shutil.copy(empty_store, folder / "mlflow" / "mlflow.db")
    store = MlflowClient(f"sqlite:///{folder / 'mlflow' / 'mlflow.db'}")
    run_id = store.create_run(store.create_experiment("mine")).info.run_id
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_", "MLFLOW_AUTH", "MLFLOW_FLASK"))}
    process = subprocess.Popen([sys.executable, "-m", "lab.cli", "ui", "--host", "0.0.0.0", "--port", str(port)],
                               cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    output: list[str] = []
    threading.Thread(target=_read_lines, args=(process.stdout, output), daemon=True).start()
    try:
        deadline = time.monotonic() + 180
        while call(port, "GET", "/health")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("lab ui --host 0.0.0.0 did not start:\n" + "".join(output)[-3000:])
            time.sleep(0.5)
        passwords = [m.group(1) for line in output if (m := PASSWORD_LINE.match(line))]
        assert len(passwords) == 1, "".join(output)
        yield ExposedUI(port, folder, output, passwords[0], run_id)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def call(port: int, method: str, path: str, body: bytes | None = None, host: str | None = None,
         password: str | None = None, content_type: str = "application/json") -> tuple[int, str]:
    """One request to the server on 127.0.0.1, with any Host header and basic-auth password: (status, body)."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                     headers={"Content-Type": content_type})
    if host is not None:
        request.add_header("Host", host)
    if password is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def attacks(exposed: ExposedUI) -> list[tuple[str, str, bytes]]:
    """What a client on the network did in issue 15: create an experiment and a run, upload a checkpoint into a
    run, mark a run KILLED; and read the store."""
    checkpoint = "/api/2.0/mlflow-artifacts/artifacts/1/{}/artifacts/checkpoints/step-1/model.safetensors"
    return [
        ("POST", "/api/2.0/mlflow/experiments/create", json.dumps({"name": "forged"}).encode()),
        ("POST", "/ajax-api/2.0/mlflow/experiments/create", json.dumps({"name": "forged"}).encode()),
        ("POST", "/api/2.0/mlflow/runs/create", json.dumps({"experiment_id": "1"}).encode()),
        ("POST", "/api/2.0/mlflow/runs/update", json.dumps({"run_id": exposed.run_id, "status": "KILLED"}).encode()),
        ("POST", "/ajax-api/2.0/mlflow/runs/update",
         json.dumps({"run_id": exposed.run_id, "status": "KILLED"}).encode()),
        ("PUT", checkpoint.format(exposed.run_id), b"payload"),
        ("PUT", "/ajax-api" + checkpoint.format(exposed.run_id).removeprefix("/api"), b"payload"),
        ("GET", "/api/2.0/mlflow/experiments/search?max_results=10", None),
        ("GET", "/", None),
    ]


def test_beyond_loopback_a_request_without_the_password_gets_401_and_changes_nothing(exposed: ExposedUI):
    for method, path, body in attacks(exposed):
        for host in (f"localhost:{exposed.port}", f"127.0.0.1:{exposed.port}"):  # a forged but accepted Host
            status, text = call(exposed.port, method, path, body, host=host)
            assert status == 401, f"{method} {path} with Host {host}: {status} {text[:200]}"
        status, _ = call(exposed.port, method, path, body, host=f"localhost:{exposed.port}", password="wrong" * 4)
        assert status == 401, f"{method} {path} with a wrong password: {status}"
    assert exposed.store.get_experiment_by_name("forged") is None
    assert exposed.store.get_run(exposed.run_id).info.status == "RUNNING"
    assert "forged" not in [e.name for e in exposed.store.search_experiments()]
    assert not list((exposed.folder / "mlflow").rglob("model.safetensors"))
    assert not (exposed.folder / "mlartifacts").exists()


def test_beyond_loopback_a_host_header_not_allowed_gets_nothing(exposed: ExposedUI):
    body = json.dumps({"name": "forged"}).encode()
    for host in ("evil.example", f"evil.example:{exposed.port}", f"localhost:{exposed.port + 1}", "localhost"):
        status, text = call(exposed.port, "POST", "/api/2.0/mlflow/experiments/create", body, host=host,
                            password=exposed.password)  # even with the password
        assert status == 403 and "Invalid Host header" in text, f"Host {host}: {status} {text[:200]}"
    assert exposed.store.get_experiment_by_name("forged") is None
    # This machine's name is what a browser elsewhere sends: accepted (and then asked for the password).
    assert call(exposed.port, "GET", "/", host=f"{socket.gethostname()}:{exposed.port}")[0] == 401


def test_beyond_loopback_the_printed_password_works_and_is_kept_nowhere(exposed: ExposedUI):
    body = json.dumps({"name": "mine-too"}).encode()
    status, text = call(exposed.port, "POST", "/api/2.0/mlflow/experiments/create", body,
                        host=f"localhost:{exposed.port}", password=exposed.password)
    assert status == 200, text
    experiment = exposed.store.get_experiment_by_name("mine-too")
    assert experiment is not None and experiment.experiment_id == json.loads(text)["experiment_id"]
    status, text = call(exposed.port, "POST", "/api/2.0/mlflow/runs/create",
                        json.dumps({"experiment_id": experiment.experiment_id}).encode(),
                        host=f"{socket.gethostname()}:{exposed.port}", password=exposed.password)
    assert status == 200, text
    auth = AuthStore.beside(exposed.folder / "mlflow" / "mlflow.db")
    assert auth.database.stat().st_mode & 0o077 == 0, "password hashes: for this user only"
    for path in exposed.folder.rglob("*"):  # neither the ini, the databases nor anything else holds it
        assert not path.is_file() or exposed.password.encode() not in path.read_bytes(), path
    printed = "".join(exposed.output)
    assert printed.count(exposed.password) == 1
    assert f"accepted Host headers: {socket.gethostname()}:{exposed.port}, " in printed


def test_auth_files_of_the_default_store_are_ignored_by_git():
    auth = AuthStore.beside(CHECKOUT / "mlflow" / "mlflow.db")
    assert auth.config.parent == CHECKOUT / "mlflow"
    ignored = subprocess.run(["git", "check-ignore", str(auth.config), str(auth.database)], cwd=CHECKOUT,
                             capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip(f"not a git checkout: {ignored.stderr.strip()}")
    assert ignored.stdout.split() == [str(auth.config), str(auth.database)]


def test_default_allowed_hosts_are_the_bound_address_and_localhost():
    assert default_allowed_hosts("192.168.1.5", 5000) == [
        "192.168.1.5:5000", "localhost:5000", "127.0.0.1:5000", "[::1]:5000"]
    assert default_allowed_hosts("fe80::1", 80)[0] == "[fe80::1]:80"
    assert f"{socket.gethostname()}:5000" in default_allowed_hosts("0.0.0.0", 5000)
    assert not any("*" in host for host in default_allowed_hosts("0.0.0.0", 5000))


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """`lab ui` in-process up to the point where it would become the MLflow server: the commands it would run."""
    commands: list[list[str]] = []

    def record(command: list[str]) -> NoReturn:
        commands.append(command)
        raise SystemExit(0)

    monkeypatch.setattr(ui, "_exec", record)
    # _prepare_auth points MLflow at lab's files through the environment: not this test process's for good.
    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", "")
    monkeypatch.setenv("MLFLOW_FLASK_SERVER_SECRET_KEY", "test")
    return commands


def test_insecure_serves_without_authentication_and_warns(store: Path, lab, launched):
    result = lab("ui", "--host", "0.0.0.0", "--port", "5123", "--insecure")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert warnings == ["lab ui: warning: --insecure: no authentication on http://0.0.0.0:5123: anyone who can "
                        "reach the port can read, change and delete your runs, and plant checkpoints that "
                        "`lab run resume=` loads"]
    (command,) = launched
    assert "--app-name" not in command
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert "localhost:5123" in hosts and not any("*" in host for host in hosts)
    assert sorted(p.name for p in store.iterdir() if "auth" in p.name) == []


def test_allowed_hosts_are_passed_to_mlflow_as_given(store: Path, lab, launched):
    result = lab("ui", "--host", "0.0.0.0", "--insecure", "--allowed-hosts", "lab.example.org,10.0.0.7:5000")
    assert result.code == 0, result.err
    (command,) = launched
    assert command[command.index("--allowed-hosts") + 1] == "lab.example.org,10.0.0.7:5000"
    assert "accepted Host headers" not in result.err


def test_loopback_needs_no_authentication(store: Path, lab, launched):
    result = lab("ui", "--port", "5124")
    assert result.code == 0, result.err
    (command,) = launched
    assert "--app-name" not in command and "warning" not in result.err and "authentication" not in result.err
    assert lab("ui", "--reset-password").code == 2


def test_beyond_loopback_a_store_other_than_sqlite_is_refused(tmp_path: Path, lab, launched, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://lab@db.example/runs")
    result = lab("ui", "--host", "0.0.0.0")
    assert result.code == 2 and not launched
    assert result.err == ("lab: error: lab ui --host 0.0.0.0: lab keeps MLflow's users beside a sqlite store, and "
                          "the tracking URI is postgresql://lab@db.example/runs; serve that store with `mlflow "
                          "server --app-name basic-auth` yourself, or pass --insecure\n")
    assert not list(tmp_path.iterdir())


def test_beyond_loopback_later_starts_keep_the_password_and_reset_makes_a_new_one(exposed: ExposedUI, lab,
                                                                                   launched, monkeypatch):
    monkeypatch.chdir(exposed.folder)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    again = lab("ui", "--host", "0.0.0.0", "--port", str(exposed.port))
    assert again.code == 0, again.err
    assert "lab ui: authentication on: user admin, created before (kept in " in again.err
    assert "lost its password? lab ui --host 0.0.0.0 --reset-password" in again.err
    assert "--app-name" in launched[0] and not any(PASSWORD_LINE.match(line) for line in again.err.splitlines())
    reset = lab("ui", "--host", "0.0.0.0", "--port", str(exposed.port), "--reset-password")
    assert reset.code == 0, reset.err
    (new,) = [m.group(1) for line in reset.err.splitlines() if (m := PASSWORD_LINE.match(line))]
    path = "/api/2.0/mlflow/experiments/search?max_results=10"
    assert call(exposed.port, "GET", path, password=new)[0] == 200  # the running server reads users per request
    assert call(exposed.port, "GET", path, password=exposed.password)[0] == 401
