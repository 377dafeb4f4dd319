"""One training step: forward, loss, backward, gradient averaging, clipping, optimizer.

The unit a gradient-cached or sharded step replaces. Queries and passages take separate forward
passes, so gradients are averaged over workers explicitly after backward (one flat all-reduce)
instead of through DDP hooks, which allow one forward per backward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.distributed as dist

from scaling.models.encoder import DualEncoder
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
                 device: torch.device, compile: bool = False) -> None:
        self.encoder, self.loss_fn, self.world, self.grad_clip = encoder, loss_fn, world, optim.grad_clip
        self.params = [p for p in encoder.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=optim.lr, weight_decay=optim.weight_decay, fused=optim.fused)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           linear_schedule(optim.warmup_steps, optim.max_steps))
        self.bf16 = device.type == "cuda"
        self.forward = torch.compile(encoder, dynamic=True) if compile else encoder

    def __call__(self, q_ids, q_mask, p_ids, p_mask, started: float) -> StepResult:
        """``started``: when this step began fetching its batch (the data phase ends now)."""
        t_data = time.perf_counter()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.bf16):
            q, p = self.forward(q_ids, q_mask), self.forward(p_ids, p_mask)
        loss = self.loss_fn(q.float(), p.float())
        t_forward = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.params, self.world)
        if self.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
        t_backward = time.perf_counter()
        self.optimizer.step()
        self.scheduler.step()
        t_end = time.perf_counter()
        return StepResult(loss.detach(), dict(zip(PHASES, (t_data - started, t_forward - t_data,
                                                            t_backward - t_forward, t_end - t_backward))))

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
