"""Gradient caching (``loss.chunk_size``): the same loss and gradients as the whole batch at once,
with dropout (masks replayed) and across two gloo workers with gathered negatives."""

from __future__ import annotations

import copy
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from scaling.models.encoder import pad_batch
from scaling.models.tiny import tiny_encoder
from scaling.training.config import OptimConfig
from scaling.training.loss import InfoNCELoss, LossConfig
from scaling.training.step import CachedTrainStep, TrainStep, average_gradients, make_step

TEXTS = [f"question number {i} about {w}" for i, w in enumerate(
    "bees rivers stars ice wheat glass salt iron clouds owls maple sand".split())]
PASSAGES = [f"the answer about {w} is in passage {i} with more words" for i, w in enumerate(
    "bees rivers stars ice wheat glass salt iron clouds owls maple sand".split())]
DEVICE = torch.device("cpu")


def _encoder():
    return tiny_encoder(TEXTS + PASSAGES, hidden=32, layers=2, seed=3)


def _batch(encoder, rows):
    q = encoder.tokenizer([TEXTS[i] for i in rows], truncation=True, max_length=32)["input_ids"]
    p = encoder.tokenizer([PASSAGES[i] for i in rows], truncation=True, max_length=32)["input_ids"]
    return (*pad_batch(q, encoder.pad_id), *pad_batch(p, encoder.pad_id))


def _grads(step, batch):
    step.optimizer.zero_grad(set_to_none=True)
    loss, _ = step.backward(*batch)
    return float(loss.detach()), {n: p.grad.clone() for n, p in step.encoder.named_parameters() if p.grad is not None}


def test_chunked_gradients_equal_the_whole_batch_without_dropout():
    base = _encoder().eval()
    whole = TrainStep(base, OptimConfig(), InfoNCELoss(LossConfig(gather=False)), world=1, device=DEVICE)
    cached = CachedTrainStep(copy.deepcopy(base), OptimConfig(), InfoNCELoss(LossConfig(gather=False, chunk_size=5)),
                             world=1, device=DEVICE, chunk_size=5)
    batch = _batch(base, range(12))
    (l1, g1), (l2, g2) = _grads(whole, batch), _grads(cached, batch)
    assert l1 == pytest.approx(l2, rel=1e-6) and g1.keys() == g2.keys() and len(g1) > 10
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name], rtol=1e-4, atol=1e-6, msg=name)


def test_dropout_masks_are_replayed():
    """With dropout, the recomputed chunks must draw the masks of the first pass: the gradients
    equal those of a graph kept from that very pass (same seed), and differ without the replay."""
    base = _encoder().train()
    cached = CachedTrainStep(base, OptimConfig(), InfoNCELoss(LossConfig(gather=False, chunk_size=4)), world=1,
                             device=DEVICE, chunk_size=4)
    batch = _batch(base, range(12))
    torch.manual_seed(11)
    loss, got = _grads(cached, batch)

    kept = copy.deepcopy(base)  # the same chunks forwarded once, with their graphs kept
    torch.manual_seed(11)
    q_ids, q_mask, p_ids, p_mask = batch
    outs = []
    from scaling.training.step import _chunks

    for ids, mask in [*_chunks(q_ids, q_mask, 4), *_chunks(p_ids, p_mask, 4)]:
        outs.append(kept(ids, mask))
    reference = InfoNCELoss(LossConfig(gather=False))(torch.cat(outs[:3]), torch.cat(outs[3:]))
    reference.backward()
    assert float(reference) == pytest.approx(loss, rel=1e-6)
    for name, param in kept.named_parameters():
        if param.grad is not None:
            torch.testing.assert_close(got[name], param.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_chunk_size_is_checked_and_chooses_the_step():
    with pytest.raises(ValueError, match="loss.chunk_size must be an integer >= 1"):
        LossConfig(chunk_size=0)
    enc = _encoder()
    assert type(make_step(enc, OptimConfig(), InfoNCELoss(LossConfig()), world=1, device=DEVICE)) is TrainStep
    assert isinstance(make_step(enc, OptimConfig(), InfoNCELoss(LossConfig(chunk_size=2)), world=1, device=DEVICE),
                      CachedTrainStep)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(rank, world, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    encoder = _encoder().eval()
    step = CachedTrainStep(encoder, OptimConfig(), InfoNCELoss(LossConfig(chunk_size=2)), world=world, device=DEVICE,
                           chunk_size=2)
    rows = range(rank * 6, (rank + 1) * 6)
    loss, _ = _grads(step, _batch(encoder, rows))
    average_gradients(step.params, world)
    if rank == 0:
        torch.save({"grads": {n: p.grad for n, p in encoder.named_parameters() if p.grad is not None}}, out)
    dist.barrier()
    dist.destroy_process_group()


def test_two_gloo_workers_with_chunks_match_one_process_with_the_whole_batch(tmp_path):
    out = tmp_path / "rank0.pt"
    mp.start_processes(_worker, args=(2, _free_port(), str(out)), nprocs=2, start_method="spawn")
    got = torch.load(out)["grads"]
    base = _encoder().eval()
    whole = TrainStep(base, OptimConfig(), InfoNCELoss(LossConfig(gather=False)), world=1, device=DEVICE)
    _, reference = _grads(whole, _batch(base, range(12)))
    assert got.keys() == reference.keys()
    for name in reference:
        torch.testing.assert_close(got[name], reference[name], rtol=1e-4, atol=1e-6, msg=name)


def test_a_tiny_decoder_trains_with_chunks_through_the_worker_loop(tmp_path):
    from scaling.models.encoder import DualEncoder
    from scaling.training.config import TrainConfig
    from scaling.training.context import LocalWorker
    from scaling.training.outcome import MODEL_FOLDER, TrainOutcome
    from scaling.training.trainer import plan_run
    from scaling.training.worker import run_worker

    cfg = TrainConfig.from_dict({
        "encoder": {"model": "tiny-llama:hidden=32,layers=2", "pooling": "last", "query_prefix": "",
                    "passage_prefix": "", "max_length": 24},
        "sampler": {"strategy": "hybrid", "batch_size": 8}, "loss": {"chunk_size": 3},
        "optim": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 3},
        "data": {"train": ["parallel-qa:train"], "heldout": None},
        "run": {"storage_path": str(tmp_path / "runs"), "num_workers": 1, "report_every": 1, "checkpoint_every": 3}})
    plan = plan_run(cfg)
    ctx = LocalWorker(tmp_path / "local")
    run_worker(plan, ctx)
    outcome = TrainOutcome.read(ctx.saved[-1])
    assert [h["step"] for h in outcome.history] == [1, 2, 3] and sum(outcome.batch_counts.values()) == 3
    assert all(torch.isfinite(torch.tensor(h["loss"])) for h in outcome.history)
    model = DualEncoder.load(ctx.saved[-1] / MODEL_FOLDER)
    assert type(model.backbone).__name__ == "LlamaModel" and model.config.pooling == "last"
    assert model.encode(["a question"], "query").shape == (1, 32)
