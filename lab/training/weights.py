"""A model's weights as safetensors and its settings as JSON, saved to a folder and loaded back strictly.

Public as ``lab.api.save_weights``, ``lab.api.load_weights`` and ``lab.api.load_settings``: every built-in plugin
saves through them, so nothing is pickled and a file that does not fit the model it is loaded into is refused with
the names that are missing, unexpected or of another shape (before anything is copied), never loaded in part.
The file names are arguments: each plugin keeps the names its saved runs already have. torch and safetensors are
imported inside the functions, so importing ``lab.api`` stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

WEIGHTS_FILE = "model.safetensors"
SETTINGS_FILE = "settings.json"


def save_weights(directory: Path, weights: torch.nn.Module | Mapping[str, torch.Tensor], *,
                 weights_file: str = WEIGHTS_FILE, settings: Mapping[str, Any] | None = None,
                 settings_file: str = SETTINGS_FILE) -> None:
    """Write ``weights`` (a module's state dict, or named tensors) to ``directory / weights_file`` and, when given,
    ``settings`` (JSON values) to ``directory / settings_file``. The folder is created if needed."""
    import torch
    from safetensors.torch import save_file, save_model

    directory.mkdir(parents=True, exist_ok=True)
    path = str(directory / weights_file)
    if isinstance(weights, torch.nn.Module):
        save_model(weights, path)  # drops the second name of a shared tensor (safetensors refuses aliases)
    else:
        save_file({name: tensor.detach().cpu().contiguous() for name, tensor in weights.items()}, path)
    if settings is not None:
        (directory / settings_file).write_text(json.dumps(dict(settings), indent=2))


def load_weights(directory: Path, into: torch.nn.Module | MutableMapping[str, torch.Tensor], *,
                 weights_file: str = WEIGHTS_FILE, device: str | torch.device = "cpu") -> None:
    """Load ``directory / weights_file`` into a module (its parameters and buffers) or into a dict of named tensors
    (whose values are replaced). What ``into`` holds now says what must be there: a missing or unexpected name or a
    shape that differs raises ValueError naming them all, and then nothing has been changed."""
    import torch
    from safetensors.torch import load_file

    path = directory / weights_file
    saved = load_file(str(path), device=str(device))
    expected = into.state_dict() if isinstance(into, torch.nn.Module) else dict(into)
    problems = _mismatches(saved, expected)
    if problems:
        raise ValueError(f"weights in {path} do not fit this model ({'; '.join(problems)})")
    if isinstance(into, torch.nn.Module):
        into.load_state_dict(saved, strict=False)  # strict=False: a shared tensor is in the file once
    else:
        into.update(saved)


def load_settings(directory: Path, settings_file: str = SETTINGS_FILE) -> dict[str, Any]:
    """The JSON settings :func:`save_weights` wrote beside the weights."""
    return json.loads((directory / settings_file).read_text())


def _mismatches(saved: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]) -> list[str]:
    """What keeps ``saved`` from fitting ``expected``, one phrase per kind of problem (empty when it fits)."""
    covered = set(saved)
    for group in _aliases(expected):
        if covered & group:  # one name of a shared tensor is enough: loading it fills the others
            covered |= group
    missing = sorted(set(expected) - covered)
    unexpected = sorted(set(saved) - set(expected))
    shapes = [f"{name} {list(saved[name].shape)} here {list(expected[name].shape)}"
              for name in sorted(set(saved) & set(expected)) if saved[name].shape != expected[name].shape]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    if shapes:
        problems.append(f"other shapes: {', '.join(shapes)}")
    return problems


def _aliases(state: Mapping[str, torch.Tensor]) -> list[set[str]]:
    """The names that are views of the same memory (a module used twice, tied weights): save_model keeps one."""
    groups: dict[tuple[Any, ...], set[str]] = {}
    for name, tensor in state.items():
        if tensor.numel() and tensor.device.type != "meta":
            key = (tensor.device, tensor.data_ptr(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
            groups.setdefault(key, set()).add(name)
    return [group for group in groups.values() if len(group) > 1]
