"""Property-based tests of what users type: for any ``key=value`` tokens and any config-file bytes, lab's parsing
and validation either succeed or raise lab's ConfigError with a one-line message (exit 2 at the CLI) — never
another exception, never a traceback."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from lab.core.config import load_config_file, parse_overrides, resolve
from lab.core.errors import ConfigError
from lab.core.loading import load_registry, make_plugin_manager
from lab.core.options import RUNNER_KEYS

# Hypothesis keeps caches in ./.hypothesis/ (even with no example database), from the moment tests are collected:
# a temporary folder instead (removed at exit), so that the checkout stays clean.
HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="lab-hypothesis-")
set_hypothesis_home_dir(HYPOTHESIS_HOME.name)
# No example database (it would live in the checkout); few enough examples for every test run.
FAST = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# The characters the override grammar gives a meaning to, so that random tokens reach past the first check.
GRAMMAR = "=,[]{}()'\"\\:.+-~@$ _eE0123456789abcxyzinfnaltrue"
KEYS = st.sampled_from([*RUNNER_KEYS, "lr", "gamma", "net_arch", "n_steps", "n_envs", "buffer_size", "batch_size",
                        "hidden", "epochs", "config", "nosuch", "prompt", ""])
TARGETS = [{"plugin": "mlp", "data": "digits"}, {"plugin": "dqn", "env": "CartPole"},
           {"plugin": "ppo", "env": "CartPole"}, {"plugin": "vae", "data": "moons"}]
VALUES = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=GRAMMAR, max_size=30),
    st.sampled_from(["nan", "inf", "-inf", "1e20", "1e99", "-1", "0", "4294967296", "1e12", "[1,-2]", "[nan]",
                     "null", "true", "''", "range(0,inf)", "range(1,9,0)", "range(nan,1)", "int('x')", "{a:1}",
                     "${x}", "1" * 400, "[" * 50, "auto_0", "choice()", "glob(*)", "interval(0,1)"]),
)
TOKENS = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=GRAMMAR, max_size=40),
    st.builds(lambda key, value: f"{key}={value}", KEYS, VALUES),
)

# Pieces of YAML that reach its corners: flow collections, anchors and aliases, merges, tags (the safe loader
# refuses Python ones), documents, tabs, odd scalars; mixed with arbitrary bytes.
YAML_PIECES = st.sampled_from([
    "plugin: mlp\n", "data: digits\n", "env: CartPole\n", "lr: .nan\n", "steps: 1e99\n", "seed: 4294967296\n",
    "lr: 1\nlr: 2\n", "{a: 1, a: 2}\n", "- a\n", "[", "{", "]", "}", "&x ", "*x", "<<: *x\n", "? [1, 2]\n: 3\n",
    "!!python/object:os.system\n", "!!binary aGk=\n", "!!set {a, b}\n", "!!timestamp 2001-12-14\n", "---\n",
    "...\n", "%YAML 1.1\n", "\t", ": ", "'", '"', "#", "\n", "~\n", "null: 1\n", "1: 2\n", "config: x.yaml\n",
    "net_arch: [64, [1]]\n", "experiment: ''\n", "run_name: \"\\u0000\"\n", "threads: 100000\n",
])
FILE_BYTES = st.one_of(
    st.binary(max_size=200),
    st.lists(YAML_PIECES, max_size=12).map(lambda pieces: "".join(pieces).encode()),
    st.lists(st.one_of(YAML_PIECES, st.text(max_size=8)), max_size=12).map(
        lambda pieces: "".join(pieces).encode("utf-8", "surrogatepass")),
)


@pytest.fixture(scope="module")
def registry() -> Any:
    return load_registry(make_plugin_manager(entry_points=False))


@pytest.fixture(scope="module")
def config_file() -> Iterator[Path]:
    """One file, rewritten by every example (a function-scoped tmp_path would be shared by the examples anyway)."""
    with tempfile.TemporaryDirectory(prefix="lab-properties-") as folder:
        yield Path(folder) / "config.yaml"


def one_line(error: ConfigError) -> bool:
    text = str(error)
    return bool(text) and "\n" not in text and "\r" not in text


@FAST
@given(tokens=st.lists(TOKENS, max_size=4), sweeps=st.booleans())
def test_any_override_tokens_parse_or_are_refused_in_one_line(tokens: list[str], sweeps: bool) -> None:
    try:
        values = parse_overrides(tokens, sweeps=sweeps)
    except ConfigError as e:
        assert one_line(e), str(e)
        return
    assert isinstance(values, dict)


@FAST
@given(target=st.sampled_from(TARGETS), key=KEYS, value=VALUES)
def test_any_parsed_value_of_any_key_resolves_or_is_refused_in_one_line(registry: Any, target: dict[str, str],
                                                                        key: str, value: str) -> None:
    try:
        parsed = parse_overrides([f"{key}={value}"])
        resolve(registry, {**target, **parsed})
    except ConfigError as e:
        assert one_line(e), str(e)


@FAST
@given(data=FILE_BYTES, target=st.sampled_from(TARGETS))
def test_any_config_file_loads_and_resolves_or_is_refused_in_one_line(registry: Any, config_file: Path,
                                                                      data: bytes, target: dict[str, str]) -> None:
    config_file.write_bytes(data)
    try:
        values = load_config_file(str(config_file))
        assert isinstance(values, dict) and all(isinstance(key, str) for key in values)
        resolve(registry, {key: value for key, value in target.items() if key not in values}, values)
    except ConfigError as e:
        assert one_line(e), str(e)


@pytest.mark.parametrize(("text", "message"), [
    ("lr: 1\nlr: 2\n", "key 'lr' is given twice (lines 1 and 2)"),
    ("{a: 1, a: 2}\n", "key 'a' is given twice"),
    ("outer:\n  x: 1\n  x: 2\n", "key 'x' is given twice (lines 2 and 3)"),
])
def test_a_key_given_twice_in_a_file_is_refused(config_file: Path, text: str, message: str) -> None:
    config_file.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config_file(str(config_file))


def test_a_yaml_merge_may_repeat_a_key(config_file: Path) -> None:
    """``<<: *base`` then an explicit key overrides the merged one: YAML's own rule, not a key given twice."""
    config_file.write_text("base: &base {lr: 1}\nmerged:\n  <<: *base\n  lr: 2\n")
    assert load_config_file(str(config_file))["merged"] == {"lr": 2}
