"""The distributed InfoNCE loss equals the single-process loss, in value and in gradients."""


import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from scaling.training.loss import InfoNCELoss, LossConfig
from scaling.training.step import average_gradients as _average_gradients

B, D_IN, D = 8, 12, 6  # global batch, input and embedding sizes


def _model():
    torch.manual_seed(0)
    return nn.Linear(D_IN, D)


def _data(hard: bool):
    g = torch.Generator().manual_seed(1)
    q, p = torch.randn(B, D_IN, generator=g), torch.randn(B, D_IN, generator=g)
    h = torch.randn(B, D_IN, generator=g) if hard else None
    return q, p, h


def _embed(model, x):
    return None if x is None else nn.functional.normalize(model(x), dim=-1)


def reference(config: LossConfig, hard: bool):
    model = _model()
    q, p, h = _data(hard)
    loss = InfoNCELoss(LossConfig(config.temperature, config.symmetric, gather=False))(
        _embed(model, q), _embed(model, p), _embed(model, h))
    loss.backward()
    return loss.item(), [prm.grad.clone() for prm in model.parameters()]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world, port, config, hard, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    model = _model()  # gradients averaged as the training loop does it (one flat all-reduce, no DDP)
    q, p, h = _data(hard)
    part = slice(rank * B // world, (rank + 1) * B // world)
    loss = InfoNCELoss(config)(_embed(model, q[part]), _embed(model, p[part]),
                               None if h is None else _embed(model, h[part]))
    loss.backward()
    _average_gradients(list(model.parameters()), world)
    losses = [torch.zeros(1) for _ in range(world)]
    dist.all_gather(losses, loss.detach().reshape(1))
    if rank == 0:
        torch.save({"loss": float(torch.cat(losses).mean()), "grads": [prm.grad for prm in model.parameters()]}, out)
    dist.barrier()  # tear gloo down together: a rank leaving early aborts its peer (SIGABRT)
    dist.destroy_process_group()


@pytest.mark.parametrize("symmetric,hard", [(False, False), (True, False), (False, True)])
def test_two_gloo_workers_match_one_process(tmp_path, symmetric, hard):
    config = LossConfig(temperature=0.05, symmetric=symmetric)
    out = tmp_path / "rank0.pt"
    mp.start_processes(_worker, args=(2, _free_port(), config, hard, str(out)), nprocs=2,
                       start_method="spawn")
    got = torch.load(out)
    ref_loss, ref_grads = reference(config, hard)
    assert got["loss"] == pytest.approx(ref_loss, rel=1e-5)
    for g, r in zip(got["grads"], ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_without_rank_offset_the_loss_would_differ(tmp_path):
    """Guard for the test itself: a wrong label offset is detectable with this data."""
    model = _model()
    q, p, _ = _data(False)
    eq, ep = _embed(model, q), _embed(model, p)
    right = nn.functional.cross_entropy(eq[4:] @ ep.T / 0.05, torch.arange(4) + 4)
    wrong = nn.functional.cross_entropy(eq[4:] @ ep.T / 0.05, torch.arange(4))
    assert abs(right.item() - wrong.item()) > 0.1


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="loss.temperature"):
        LossConfig(temperature=0)
