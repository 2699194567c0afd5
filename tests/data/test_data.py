"""Datasets: registered through the same hook API, listed without loading, split the same way every time."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from lab.api import DatasetSpec, hookimpl
from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.core.registry import Provenance

BUILTIN = {"digits", "digits_rows", "moons", "circles", "sine", "goog", "swiss_roll", "shapes"}


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


def test_lab_data_lists_the_builtin_datasets(lab, registry):
    result = lab("data", "--json")
    assert result.code == 0
    rows = {row["name"]: row for row in json.loads(result.out)}
    assert set(rows) >= BUILTIN
    assert rows["digits"]["shape"] == [1, 8, 8] and rows["digits"]["classes"] == 10
    assert rows["sine"]["task"] == "regression" and rows["sine"]["classes"] is None
    table = lab("data")
    assert table.code == 0 and "digits_rows" in table.out and "1x8x8" in table.out


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_loaded_data_matches_its_declaration_and_splits_are_fixed(registry, name):
    spec = registry.datasets[name].spec
    first, second = registry.load_dataset(name), registry.load_dataset(name)
    splits = [(first.x_train, first.y_train), (first.x_val, first.y_val), (first.x_test, first.y_test)]
    assert sum(len(x) for x, _ in splits) == spec.size
    assert all(x.shape[1:] == spec.shape and len(x) == len(y) for x, y in splits)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.y_train, second.y_train)
    assert first.split_seed == 0
    train_rows = {row.tobytes() for row in first.x_train}
    assert not any(row.tobytes() in train_rows for row in first.x_test), "no test example is in the train split"
    if spec.classes:
        assert first.classes == spec.classes and set(np.unique(first.y_test)) == set(range(spec.classes))


def test_digits_and_digits_rows_share_their_splits(registry):
    images, rows = registry.load_dataset("digits"), registry.load_dataset("digits_rows")
    np.testing.assert_array_equal(images.x_test[:, 0], rows.x_test)
    np.testing.assert_array_equal(images.y_test, rows.y_test)


def test_unknown_dataset_suggests_the_closest(registry):
    with pytest.raises(ConfigError, match=r"unknown dataset 'digit' \(did you mean 'digits'\?\)"):
        registry.resolve_dataset("digit")


def test_data_key_on_an_agent_is_refused(registry):
    with pytest.raises(ConfigError, match="data= does not apply to agent plugin 'dqn'; it trains on env=NAME"):
        resolve(registry, {"plugin": "dqn", "data": "digits"})


def test_a_third_party_dataset_registers_with_provenance():
    module = types.ModuleType("lab_more_data")
    clumsy = types.ModuleType("lab_clumsy_data")

    @hookimpl
    def register_datasets(register):
        register(DatasetSpec("tides", "regression", (24, 1), 500, "lab_more_data:tides", "Tide heights."))

    @hookimpl
    def register_bad_datasets(register):
        register(DatasetSpec("waves", "regression", (24, 1), 500, "lab_clumsy_data:waves"))
        register(DatasetSpec("bad", "clustering", (2,), 10, "lab_clumsy_data:bad"))

    module.register_datasets = register_datasets
    clumsy.register_datasets = register_bad_datasets
    pm = make_plugin_manager(entry_points=False)
    pm.register_source(module, "lab_more_data", "lab-more-data", "0.1")
    pm.register_source(clumsy, "lab_clumsy_data", "lab-clumsy-data", "0.2")
    registry = load_registry(pm)
    tides = registry.datasets["tides"]
    assert tides.spec.task == "regression"
    assert tides.provenance == Provenance("lab-more-data", "0.1", "lab_more_data")
    assert "bad" not in registry.datasets and "waves" not in registry.datasets, "all or nothing per plugin"
    (problem,) = registry.problems
    assert "lab-clumsy-data" in problem and "task 'clustering'" in problem


def test_goog_is_split_in_time_order(registry):
    data = registry.load_dataset("goog")
    # Window i+1 is window i moved on by one day: seen from its new last day, it is the old window shifted by
    # one minus the day's move. True across train -> val -> test only if the splits follow each other in time.
    for before, target, after in ((data.x_train, data.y_train, data.x_val), (data.x_val, data.y_val, data.x_test)):
        np.testing.assert_allclose(after[0, :-1, 0], before[-1, 1:, 0] - target[-1], atol=1e-5)
    assert len(data.x_train) + len(data.x_val) + len(data.x_test) == 1015
