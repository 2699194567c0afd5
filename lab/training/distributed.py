"""Data-parallel training: ``lab run ... nproc=N``, or ``torchrun --nproc-per-node=N -m lab.cli run ...``.

Every process builds the same model and walks the same shuffled order of the data; each takes its share of every
global batch (:func:`shard`) and gradients are averaged before each optimiser step (:func:`average_gradients`),
so N processes at ``batch_size=B`` follow one process at ``batch_size=B``. Rank 0 is the run: it owns the MLflow
run, evaluations, checkpoints and the progress bar, and tells the others at every step whether to go on
(:func:`agree`). The others log nothing.

``nproc=N`` starts ranks 1..N-1 as ``lab run`` processes with the same arguments and torchrun's environment
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT); under torchrun that environment is already there. The backend is
gloo on CPU and nccl on CUDA. A plugin opts in with ``Plugin(data_parallel=True)``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from lab.core.errors import ConfigError

# A follower waits in agree() while rank 0 evaluates or checkpoints: allow for slow evaluations.
TIMEOUT = timedelta(hours=1)


def core_share(parts: int) -> int:
    """This machine's cores (those this process may use) split ``parts`` ways, at least one each: the threads each
    of ``parts`` processes should run (torch and NumPy default to one thread per core in every process)."""
    return max(1, len(os.sched_getaffinity(0)) // parts)


def launched_size() -> int:
    """WORLD_SIZE when this process was started as one rank of several (by ``nproc=`` or torchrun), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def rank() -> int:
    """This process's rank: 0 for the process that tracks the run (and when not distributed)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    """How many processes train together (1 when not distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def check(plugin: Any, params: Any, nproc: int) -> None:
    """Refuse ``nproc`` (or a torchrun launch) for a plugin that cannot train data-parallel, or whose global
    batch does not split evenly (unequal shards would weigh examples unequally)."""
    size = max(nproc, launched_size())
    if size == 1:
        return
    if not plugin.spec.data_parallel:
        raise ConfigError(f"nproc={size}: plugin {plugin.name!r} does not train data-parallel "
                          "(plugins that do declare Plugin(data_parallel=True): the built-in generators vae, gan, "
                          "diffusion); use nproc=1")
    batch = getattr(params, "batch_size", None)
    if isinstance(batch, int) and batch % size:
        raise ConfigError(f"nproc={size}: batch_size={batch} does not split evenly over {size} processes; "
                          f"use a multiple of {size}")


@contextmanager
def group(nproc: int, args: Sequence[str], plugins_dir: str | None) -> Iterator[None]:
    """Within the block this process is rank 0 of ``nproc`` (torchrun's environment variables set), and ranks
    1..nproc-1 run as ``lab`` processes with the same command line (``args``: ``run ...`` or ``rerun ID ...``).
    Afterwards the environment is as before and the other ranks are gone."""
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc)}
    saved = {name: os.environ.get(name) for name in [*base, "RANK", "LOCAL_RANK"]}
    followers = _start_followers(nproc, base, args, plugins_dir)
    os.environ.update(base, RANK="0", LOCAL_RANK="0")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _stop_followers(followers)


def _start_followers(nproc: int, base: dict[str, str], args: Sequence[str],
                     plugins_dir: str | None) -> list[subprocess.Popen]:
    from lab.core.config import replace_override

    command = [sys.executable, "-m", "lab.cli", *(["--plugins-dir", plugins_dir] if plugins_dir else []),
               *replace_override(args, "progress", "false")]
    environment = {**os.environ, **base}
    # Each rank gets its share of the cores, as child runs of a sweep do.
    environment.setdefault("OMP_NUM_THREADS", str(core_share(nproc)))
    # Followers ignore Ctrl-C (the terminal sends it to every process): rank 0 checkpoints and then ends them.
    return [subprocess.Popen(command, env={**environment, "RANK": str(r), "LOCAL_RANK": str(r)},
                             stdout=subprocess.DEVNULL, preexec_fn=_ignore_interrupts) for r in range(1, nproc)]


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop_followers(followers: list[subprocess.Popen]) -> None:
    """After rank 0 is done: give followers a moment to leave on their own, then end them."""
    for process in followers:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def initialize(device: str) -> str:
    """Join the process group (gloo on CPU, nccl on CUDA); returns this rank's device."""
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=TIMEOUT)
    return device


def finalize() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def agree(go_on: bool) -> bool:
    """Every rank learns rank 0's decision (go on training or stop) at this step."""
    import torch
    import torch.distributed as dist

    if world_size() == 1:
        return go_on
    flag = torch.tensor([1 if go_on else 0], dtype=torch.int32)
    dist.broadcast(flag, src=0)
    return bool(flag.item())


# ---------------------------------------------------------------------------------------------- for plugins


def shard(batch: Any) -> Any:
    """This rank's share of a global batch (every ``world_size``-th row from its rank); the batch itself when
    not distributed."""
    size = world_size()
    return batch if size == 1 else batch[rank()::size]


def sync_parameters(module: Any) -> None:
    """Give every rank rank 0's weights (call once, after building the model)."""
    import torch.distributed as dist

    if world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(optimizer: Any) -> None:
    """Before each ``optimizer.step()``, replace every gradient by its mean over the ranks (one all-reduce of
    all gradients together). With equal shards this is the gradient of the global batch's mean loss."""
    import torch
    import torch.distributed as dist

    size = world_size()
    if size == 1:
        return

    def hook(optimizer: Any, args: Any, kwargs: Any) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= size
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    optimizer.register_step_pre_hook(hook)
