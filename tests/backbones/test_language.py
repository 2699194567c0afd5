"""Character language models on `pydocs`: the corpus, bits per character against baselines, `lab sample`."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from lab.core.config import resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.training.build import build_context
from lab_backbones.language import baselines


@pytest.fixture(scope="module")
def registry():
    return load_registry(make_plugin_manager(entry_points=False))


@pytest.fixture(autouse=True)
def tracked(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")


def test_pydocs_is_stdlib_docstrings_split_in_contiguous_slices(registry):
    data = registry.load_dataset("pydocs")
    vocabulary = data.vocabulary
    assert len(vocabulary) == len(set(vocabulary)) > 50
    text = "".join(vocabulary[i] for i in data.x_train[:5000])
    assert "Return" in text or "return" in text
    sizes = [len(data.x_train), len(data.x_val), len(data.x_test)]
    assert sizes[0] > 10 * sizes[1] and abs(sizes[1] - sizes[2]) <= 2
    assert max(int(data.x_train.max()), int(data.x_test.max())) < len(vocabulary)


def test_baselines_measure_what_they_claim():
    repeating = np.array([0, 1] * 500)
    unigram, bigram = baselines(repeating, repeating, 2)
    assert unigram == pytest.approx(1.0, abs=0.01)  # two equally likely symbols: one bit each
    assert bigram < 0.01  # the next symbol is certain given the last one


def test_weights_that_do_not_fit_are_refused_by_name(registry, tmp_path: Path):
    def build(**keys):
        config = resolve(registry, {"plugin": "gru", "data": "pydocs", "seed": 0, **keys})
        return config.plugin.build(build_context(config, "cpu"))

    build(hidden=8, layers=1).save(tmp_path / "small")
    with pytest.raises(ValueError, match=r"do not fit .*missing rnn\.bias_hh_l1.*other shapes: embed\.weight"):
        build(hidden=16, layers=2).load(tmp_path / "small")


@pytest.mark.parametrize(("keys", "message"), [
    ({"plugin": "mlp", "data": "pydocs"}, "text is modelled by sequence models"),
    ({"plugin": "lstm", "data": "pydocs", "bidirectional": True}, "cannot read backwards"),
    ({"plugin": "gru", "data": "pydocs", "loss": "mse"}, "trained with cross_entropy"),
])
def test_refused_text_combinations(registry, keys, message):
    with pytest.raises(ConfigError, match=message):
        resolve(registry, keys)


@pytest.mark.slow
@pytest.mark.parametrize("plugin", ["transformer", "gru"])
def test_language_model_trains_and_samples(lab, runs, registry, plugin):
    result = lab("run", f"plugin={plugin}", "data=pydocs", "steps=40000", "eval_every=20000", "progress=false")
    assert result.code == 0, result.err
    (run,) = runs()
    metrics = run.data.metrics
    assert {"test/bpc", "test/unigram_bpc", "test/bigram_bpc", "eval/bpc", "train/bpc"} <= set(metrics)
    uniform = np.log2(len(registry.load_dataset("pydocs").vocabulary))
    assert metrics["test/bpc"] < uniform - 0.3, "a few steps already beat guessing uniformly"
    run_id = re.search(r"run id:\s+(\w+)", result.out).group(1)
    first = lab("sample", f"run={run_id}", "prompt='def '", "n=60", "seed=1")
    again = lab("sample", f"run={run_id}", "prompt='def '", "n=60", "seed=1")
    assert first.code == 0, first.err
    assert first.out == again.out and first.out.startswith("def ")
    assert len(first.out.rstrip("\n")) >= 60


def test_sample_errors(lab, runs, with_toy_plugin):
    assert lab("run", "plugin=toy", "env=Toy", "steps=10", "progress=false").code == 0
    (run,) = runs()
    result = lab("sample", f"run={run.info.run_id}")
    assert result.code == 2 and "has nothing to sample from" in result.err
    assert lab("sample", "prompt=x").code == 2
    assert "n=0: must be >= 1" in lab("sample", f"run={run.info.run_id}", "n=0").err
