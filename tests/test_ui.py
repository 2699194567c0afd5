"""`lab ui` serves the MLflow UI for the same store, on the loopback interface."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


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
