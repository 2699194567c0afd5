"""`threads=` defaults per plugin kind (lab.core.options.THREADS_BY_KIND), stays a user override, and leaves
data-parallel ranks to their share of the cores."""

from __future__ import annotations

import pytest

from lab.core.config import resolve
from lab.core.loading import load_registry, make_plugin_manager


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


@pytest.mark.parametrize(("values", "threads"), [
    ({"plugin": "dqn", "env": "CartPole"}, 1),
    ({"plugin": "mlp", "data": "digits"}, 1),
    ({"plugin": "transformer", "data": "pydocs"}, 1),
    ({"plugin": "vae", "data": "digits"}, 0),
    ({"plugin": "mlp", "data": "digits", "nproc": 2}, 0),  # each rank: its share of the cores (lab.training.runner)
])
def test_threads_default_per_kind(registry, values, threads):
    config = resolve(registry, values)
    assert config.runner.threads == threads
    assert {f.key: f.source for f in config.fields}["threads"] == "default"


def test_threads_stays_an_override(registry):
    for source, layers in (("cli", ({"plugin": "mlp", "data": "digits", "threads": 0}, None)),
                           ("file", ({"plugin": "vae", "data": "digits"}, {"threads": 2}))):
        config = resolve(registry, *layers)
        assert config.runner.threads == (0 if source == "cli" else 2)
        assert {f.key: f.source for f in config.fields}["threads"] == source
