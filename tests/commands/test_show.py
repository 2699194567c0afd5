"""`lab show`: the resolved config of a plugin on an env, as text and as JSON."""

from __future__ import annotations

import json


def test_show_names_the_preset_and_every_key(lab):
    result = lab("show", "plugin=dqn", "env=CartPole", "lr=0.01")
    assert result.code == 0, result.err
    assert "preset: zoo:dqn/CartPole-v1" in result.out
    for text in ("net_arch", "[256, 256]", "list[int]", "exploration_fraction", "0.16", "preset", "cli"):
        assert text in result.out


def test_show_json_has_value_type_source_and_doc_for_every_key(lab):
    result = lab("show", "plugin=ppo", "env=LunarLander", "--json")
    payload = json.loads(result.out)
    assert payload["preset"] == "zoo:ppo/LunarLander-v3" and payload["target"] == "LunarLander-v3"
    keys = {entry["key"]: entry for entry in payload["keys"]}
    assert keys["n_envs"]["value"] == 16 and keys["n_envs"]["source"] == "preset"
    assert keys["vf_coef"]["source"] == "default" and keys["vf_coef"]["type"] == "float"
    assert all(entry["doc"] for entry in payload["keys"])
