"""Saving what exact resumption needs — optimizer moments, RNG states, counters — without pickle.

Tensors go to ``training_state.safetensors``, everything else to ``training_state.json``. The global RNGs
(python, numpy, torch CPU and CUDA) are always included. torch is imported inside the functions.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TENSORS = "training_state.safetensors"
VALUES = "training_state.json"


def save_training_state(directory: Path, *, optimizers: Mapping[str, Any] | None = None,
                        generators: Mapping[str, Any] | None = None, tensors: Mapping[str, Any] | None = None,
                        values: Mapping[str, Any] | None = None) -> None:
    """Write optimizers' state, torch Generators, extra tensors and JSON values (counters) to ``directory``."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    flat: dict[str, torch.Tensor] = {f"tensor.{k}": v for k, v in (tensors or {}).items() if v is not None}
    meta: dict[str, Any] = {"values": dict(values or {}), "optimizers": {}, "python_rng": random.getstate()}
    numpy_state = np.random.get_state()
    meta["numpy_rng"] = [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]]
    flat["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for index, state in enumerate(torch.cuda.get_rng_state_all()):
            flat[f"rng.cuda.{index}"] = state
    for name, generator in (generators or {}).items():
        flat[f"generator.{name}"] = generator.get_state()
    for name, optimizer in (optimizers or {}).items():
        state = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if isinstance(value, torch.Tensor):
                    flat[f"optimizer.{name}.{index}.{key}"] = value
                else:
                    scalars.setdefault(str(index), {})[key] = value
        meta["optimizers"][name] = {"param_groups": state["param_groups"], "scalars": scalars,
                                    "indices": [str(i) for i in state["state"]]}
    save_file({k: v.detach().cpu().contiguous() for k, v in flat.items()}, str(directory / TENSORS))
    (directory / VALUES).write_text(json.dumps(meta))


def load_training_state(directory: Path, *, optimizers: Mapping[str, Any] | None = None,
                        generators: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Restore what :func:`save_training_state` wrote into the given objects and the global RNGs; returns
    (values, tensors)."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    flat = load_file(str(directory / TENSORS))
    meta = json.loads((directory / VALUES).read_text())
    python_state = meta["python_rng"]
    random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
    kind, keys, *rest = meta["numpy_rng"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(flat["rng.torch"])
    cuda = [flat[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in flat]
    if cuda:
        torch.cuda.set_rng_state_all(cuda)
    for name, generator in (generators or {}).items():
        generator.set_state(flat[f"generator.{name}"])
    for name, optimizer in (optimizers or {}).items():
        saved = meta["optimizers"][name]
        device = next((p.device for g in optimizer.param_groups for p in g["params"]), torch.device("cpu"))
        state: dict[int, dict[str, Any]] = {}
        for index in saved["indices"]:
            entries = dict(saved["scalars"].get(index, {}))
            prefix = f"optimizer.{name}.{index}."
            for key, value in flat.items():
                if key.startswith(prefix):
                    # Adam keeps its step count on the CPU; moments live with the parameters.
                    entries[key[len(prefix):]] = value if key.endswith(".step") else value.to(device)
            state[int(index)] = entries
        optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    tensors = {k[len("tensor."):]: v for k, v in flat.items() if k.startswith("tensor.")}
    return meta["values"], tensors
