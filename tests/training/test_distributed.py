"""Data-parallel training (``nproc=N``): the gradient math, and a generator trained on two gloo processes."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from mlflow import MlflowClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(16, 3, generator=generator), torch.randn(16, 1, generator=generator)


def _train(model: torch.nn.Module, steps: int) -> list[torch.Tensor]:
    from lab.api import average_gradients, shard, sync_parameters

    sync_parameters(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    average_gradients(optimizer)
    x, y = _batch()
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(shard(x)), shard(y)).backward()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def _rank(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    model = _model()
    if rank == 1:  # a different start: sync_parameters must give it rank 0's weights
        for p in model.parameters():
            p.data.add_(1.0)
    weights = _train(model, steps=5)
    torch.save(weights, f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_ranks_on_half_batches_follow_one_process_on_the_whole_batch(tmp_path: Path):
    mp.start_processes(_rank, args=(_free_port(), str(tmp_path)), nprocs=2, start_method="spawn")
    alone = _train(_model(), steps=5)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    for mine, theirs, single in zip(ranks[0], ranks[1], alone, strict=True):
        assert torch.equal(mine, theirs), "the ranks must hold identical weights"
        torch.testing.assert_close(mine, single, rtol=1e-5, atol=1e-6)
    assert not torch.equal(alone[0], _model()[0].weight), "training moved the weights"


def test_helpers_do_nothing_in_one_process():
    from lab.api import rank, shard, world_size

    x = torch.arange(6)
    assert (rank(), world_size()) == (0, 1) and shard(x) is x


@pytest.fixture
def runs(store: Path):
    def finished(experiment: str) -> list:
        client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
        found = client.get_experiment_by_name(experiment)
        return client.search_runs([found.experiment_id]) if found else []

    return finished


def test_nproc_2_trains_a_generator_like_one_process_in_one_run(lab, runs, client):
    budget = ["plugin=vae", "data=moons", "steps=6000", "eval_every=3000", "progress=false", "seed=0"]
    assert lab("run", *budget, "experiment=one").code == 0
    result = lab("run", *budget, "nproc=2", "experiment=two")
    assert result.code == 0, result.err
    assert "WORLD_SIZE" not in os.environ and "RANK" not in os.environ, "rank 0's environment is restored"
    (single,) = runs("one")
    (parallel,) = runs("two")  # the other rank logged nothing
    assert parallel.info.status == "FINISHED"
    assert parallel.data.params["nproc"] == "2" and parallel.data.tags["lab.world_size"] == "2"
    assert parallel.data.params["batch_size"] == single.data.params["batch_size"], "the same global batch"
    assert [m.step for m in client.get_metric_history(parallel.info.run_id, "eval/score")] == [3072, 6016]
    # Same data order and global batch; only the noise draws of the second half differ: the same quality.
    one, two = single.data.metrics["test/mmd2_ratio_to_ceiling"], parallel.data.metrics["test/mmd2_ratio_to_ceiling"]
    assert two < 0.9 and abs(one - two) < 0.2, (one, two)


def test_nproc_is_refused_where_it_cannot_work(lab, runs):
    result = lab("run", "plugin=dqn", "env=CartPole", "nproc=2")
    assert result.code == 2 and "does not train data-parallel" in result.err and "vae" in result.err
    result = lab("run", "plugin=vae", "data=moons", "nproc=3", "batch_size=128")
    assert result.code == 2 and "batch_size=128 does not split evenly over 3" in result.err
    result = lab("run", "plugin=vae", "data=moons", "nproc=0")
    assert result.code == 2 and "nproc" in result.err
    assert runs("vae-moons") == [] and runs("dqn-CartPole-v1") == []
