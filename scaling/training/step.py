"""One training step: forward, loss, backward, gradient averaging, clipping, optimizer.

The unit a gradient-cached or sharded step replaces. Queries and passages take separate forward
passes, so gradients are averaged over workers explicitly after backward (one flat all-reduce)
instead of through DDP hooks, which allow one forward per backward. Under FSDP (``sharded``)
the sharding averages them itself and the all-reduce is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from scaling.models.encoder import DualEncoder
from scaling.models.precision import autocast
from scaling.training.config import OptimConfig
from scaling.training.loss import InfoNCELoss

PHASES = ("data", "forward", "backward", "optimizer")


def linear_schedule(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    if world == 1 or not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


@dataclass
class StepResult:
    loss: torch.Tensor  # detached, on the device: read at the report, no sync per step
    seconds: dict[str, float]  # per phase (PHASES)


class TrainStep:
    """Owns the optimizer and schedule of one worker's encoder."""

    def __init__(self, encoder: DualEncoder, optim: OptimConfig, loss_fn: InfoNCELoss, *, world: int,
                 device: torch.device, compile: bool = False, sharded: bool = False) -> None:
        self.encoder, self.loss_fn, self.world, self.grad_clip = encoder, loss_fn, world, optim.grad_clip
        self.sharded = sharded  # FSDP reduce-scatters (averages) the gradients in backward
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=optim.lr, weight_decay=optim.weight_decay, fused=optim.fused)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           linear_schedule(optim.warmup_steps, optim.max_steps))
        self.device, self.dtype = device, encoder.config.dtype
        # fp16's narrow range: gradients scaled up before backward, unscaled before clipping, and
        # a step with an overflow skipped (all workers alike: the all-reduce spreads an inf)
        self.scaler = torch.amp.GradScaler(device.type) if self.dtype == "fp16" else None
        self.forward = torch.compile(encoder, dynamic=True) if compile else encoder

    def scaled(self, loss: torch.Tensor) -> torch.Tensor:
        return self.scaler.scale(loss) if self.scaler is not None else loss

    def backward(self, q_ids, q_mask, p_ids, p_mask) -> tuple[torch.Tensor, float]:
        """Loss of the local batch, gradients accumulated into the parameters; and when the
        forward phase ended (for the phase timings)."""
        # the encoder computes under autocast in encoder.dtype; one outer context makes the
        # query and passage graphs share autocast's 16-bit copy of each fp32 weight
        with autocast(self.dtype, self.device):
            q, p = self.forward(q_ids, q_mask), self.forward(p_ids, p_mask)
        loss = self.loss_fn(q.float(), p.float())
        t_forward = time.perf_counter()
        self.scaled(loss).backward()
        return loss, t_forward

    def __call__(self, q_ids, q_mask, p_ids, p_mask, started: float) -> StepResult:
        """``started``: when this step began fetching its batch (the data phase ends now)."""
        t_data = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss, t_forward = self.backward(q_ids, q_mask, p_ids, p_mask)
        if not self.sharded:
            average_gradients(self.params, self.world)
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.grad_clip > 0:  # on DTensors (sharded) the norm is the global one
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        t_backward = time.perf_counter()
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.scheduler.step()
        t_end = time.perf_counter()
        return StepResult(loss.detach(), dict(zip(PHASES, (t_data - started, t_forward - t_data,
                                                            t_backward - t_forward, t_end - t_backward))))

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def state_dict(self) -> dict:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        if self.scaler is not None:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


def _rng_state(device: torch.device) -> tuple:
    return torch.get_rng_state(), torch.cuda.get_rng_state(device) if device.type == "cuda" else None


def _set_rng_state(state: tuple, device: torch.device) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _chunks(ids: torch.Tensor, mask: torch.Tensor, size: int):
    """Row chunks, each cut to its own longest sequence (less padding to carry): the columns
    any row uses, which is a prefix under right padding and a suffix under left padding."""
    for start in range(0, len(ids), size):
        m = mask[start:start + size]
        used = m.any(0).nonzero().squeeze(1)
        cols = slice(int(used[0]), int(used[-1]) + 1)
        yield ids[start:start + size, cols], m[:, cols]


class CachedTrainStep(TrainStep):
    """Gradient caching (GradCache; sentence-transformers' CachedMultipleNegativesRankingLoss):
    embed the local batch in chunks of ``loss.chunk_size`` rows without a graph, compute the full
    (gathered) loss on those embeddings, then re-run each chunk with its graph and push the
    loss's gradient through it, replaying the chunk's RNG state so dropout draws the same masks.
    Memory holds one chunk's activations, whatever the batch; gradients equal the unchunked ones."""

    def __init__(self, *args, chunk_size: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.chunk_size = chunk_size

    def backward(self, q_ids, q_mask, p_ids, p_mask) -> tuple[torch.Tensor, float]:
        parts = [chunk for ids, mask in ((q_ids, q_mask), (p_ids, p_mask)) for chunk in _chunks(ids, mask, self.chunk_size)]
        n_query_chunks = -(-len(q_ids) // self.chunk_size)
        states, embeddings = [], []
        with torch.no_grad():
            for ids, mask in parts:
                states.append(_rng_state(self.device))
                embeddings.append(self.forward(ids, mask).float())
        after = _rng_state(self.device)
        q = torch.cat(embeddings[:n_query_chunks]).requires_grad_()
        p = torch.cat(embeddings[n_query_chunks:]).requires_grad_()
        loss = self.loss_fn(q, p)
        t_forward = time.perf_counter()
        self.scaled(loss).backward()  # gradients with respect to every embedding (gathered negatives included)
        grads = list(q.grad.split([len(c[0]) for c in parts[:n_query_chunks]])) + \
            list(p.grad.split([len(c[0]) for c in parts[n_query_chunks:]]))
        for (ids, mask), state, grad in zip(parts, states, grads):
            _set_rng_state(state, self.device)
            out = self.forward(ids, mask).float()
            out.backward(grad)
        _set_rng_state(after, self.device)
        return loss, t_forward


def make_step(encoder: DualEncoder, optim: OptimConfig, loss_fn: InfoNCELoss, *, world: int, device: torch.device,
              compile: bool = False, sharded: bool = False) -> TrainStep:
    """The plain step, or the gradient-cached one when ``loss.chunk_size`` is set."""
    chunk = loss_fn.config.chunk_size
    if chunk is None:
        return TrainStep(encoder, optim, loss_fn, world=world, device=device, compile=compile, sharded=sharded)
    return CachedTrainStep(encoder, optim, loss_fn, world=world, device=device, compile=compile, sharded=sharded,
                           chunk_size=chunk)
