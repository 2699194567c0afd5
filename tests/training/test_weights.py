"""lab.api.save_weights / load_weights / load_settings: safetensors + JSON round trips, loaded strictly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from lab.api import load_settings, load_weights, save_weights


def net(hidden: int = 4) -> nn.Sequential:
    return nn.Sequential(nn.Linear(3, hidden), nn.BatchNorm1d(hidden), nn.Linear(hidden, 2))


def test_a_module_and_its_settings_round_trip(tmp_path: Path):
    torch.manual_seed(0)
    saved = net()
    save_weights(tmp_path / "model", saved, weights_file="policy.safetensors", settings={"steps": 3, "names": ["a"]},
                 settings_file="agent.json")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["agent.json", "policy.safetensors"]
    assert json.loads((tmp_path / "model" / "agent.json").read_text()) == {"steps": 3, "names": ["a"]}
    assert load_settings(tmp_path / "model", "agent.json") == {"steps": 3, "names": ["a"]}
    loaded = net()
    load_weights(tmp_path / "model", loaded, weights_file="policy.safetensors")
    for (name, expected), actual in zip(saved.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), name


def test_the_default_file_names_and_no_settings_file_unless_given(tmp_path: Path):
    save_weights(tmp_path, net())
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    load_weights(tmp_path, net())


def test_weights_of_another_shape_are_refused_by_name_and_nothing_is_loaded(tmp_path: Path):
    save_weights(tmp_path, net(hidden=4))
    other = net(hidden=8)
    before = {name: value.clone() for name, value in other.state_dict().items()}
    with pytest.raises(ValueError, match=r"do not fit .*other shapes: 0\.bias \[4\] here \[8\]") as error:
        load_weights(tmp_path, other)
    assert "0.weight [4, 3] here [8, 3]" in str(error.value) and "missing" not in str(error.value)
    assert all(torch.equal(before[name], value) for name, value in other.state_dict().items())


def test_missing_and_unexpected_names_are_refused_by_name(tmp_path: Path):
    save_weights(tmp_path, nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)))
    with pytest.raises(ValueError, match=r"missing 1\.0\.bias, 1\.0\.weight; unexpected 1\.bias, 1\.weight"):
        load_weights(tmp_path, nn.Sequential(nn.Linear(3, 2), nn.Sequential(nn.Linear(2, 2))))


def test_a_module_used_twice_is_saved_once_and_loads(tmp_path: Path):
    """SB3's actor-critic shares one features extractor under three names; safetensors keeps one of them."""
    def shared() -> nn.Module:
        model = nn.Module()
        model.first = model.second = nn.Linear(2, 2)
        return model

    torch.manual_seed(0)
    saved = shared()
    save_weights(tmp_path, saved)
    loaded = shared()
    load_weights(tmp_path, loaded)
    assert torch.equal(loaded.second.weight, saved.first.weight)


def test_named_tensors_round_trip_and_are_checked_against_the_ones_given(tmp_path: Path):
    stats = {"mean": torch.arange(3, dtype=torch.float64), "count": torch.tensor(5.0, dtype=torch.float64)}
    save_weights(tmp_path, stats, weights_file="normalize.safetensors")
    into = {"mean": torch.zeros(3, dtype=torch.float64), "count": torch.tensor(0.0, dtype=torch.float64)}
    load_weights(tmp_path, into, weights_file="normalize.safetensors")
    assert torch.equal(into["mean"], stats["mean"]) and float(into["count"]) == 5.0
    wrong = {"mean": torch.zeros(4, dtype=torch.float64), "var": torch.zeros(3, dtype=torch.float64)}
    with pytest.raises(ValueError, match=r"missing var; unexpected count; other shapes: mean \[3\] here \[4\]"):
        load_weights(tmp_path, wrong, weights_file="normalize.safetensors")
    assert torch.equal(wrong["mean"], torch.zeros(4, dtype=torch.float64))


def test_importing_lab_api_imports_neither_torch_nor_safetensors():
    code = "import sys, lab.api; print([m for m in ('torch', 'safetensors') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
