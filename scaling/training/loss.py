"""InfoNCE over in-batch negatives gathered from every worker, with gradients.

Each worker scores its own queries against the passages of *all* workers (gathered with a
gradient-carrying all_gather), so the negatives are the whole global batch. Labels are offset by
the worker's rank after the gather (the bug sentence-transformers once had: without the offset
every worker but rank 0 trains towards the wrong positives). With gradients averaged over
workers (the training loop's all-reduce), the result equals one process computing the loss of the
whole global batch; the tests check loss and gradients against that single-process reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the summed gradient of its own slice.

    Written here because torch's public option, ``torch.distributed.nn.functional.all_gather``, is
    deprecated, and its replacements live in the private ``_functional_collectives`` module, whose
    names already changed within torch 2.13. Plain ``all_gather``/``all_reduce`` are stable. gloo
    has no reduce-scatter, so backward all-reduces the full gradient and keeps this rank's rows.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        world, rank = dist.get_world_size(), dist.get_rank()
        parts = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.rows = rank, x.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks in rank order; gradients flow back to each rank's slice.

    Every rank must pass the same number of rows (the sampler slices global batches evenly).
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@dataclass(frozen=True)
class LossConfig:
    temperature: float = 0.05
    symmetric: bool = False  # add the passage -> query direction
    gather: bool = True  # negatives from all workers
    chunk_size: int | None = None  # gradient caching: embed this many rows at a time (None: the whole local batch)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError(f"loss.temperature must be > 0, not {self.temperature}")
        if self.chunk_size is not None and (isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int)
                                            or self.chunk_size < 1):
            raise ValueError(f"loss.chunk_size must be an integer >= 1 or unset, not {self.chunk_size!r}")


class InfoNCELoss(nn.Module):
    def __init__(self, config: LossConfig = LossConfig()) -> None:
        super().__init__()
        self.config = config

    def forward(self, queries: torch.Tensor, passages: torch.Tensor,
                hard_negatives: torch.Tensor | None = None) -> torch.Tensor:
        """Mean loss over this worker's queries; inputs are (normalised) embeddings."""
        gather = gather_with_grad if self.config.gather else (lambda x: x)
        all_passages = gather(passages)
        offset = _rank() * len(queries) if self.config.gather else 0
        labels = torch.arange(len(queries), device=queries.device) + offset
        candidates = all_passages if hard_negatives is None else torch.cat([all_passages, gather(hard_negatives)])
        loss = nn.functional.cross_entropy(queries @ candidates.T / self.config.temperature, labels)
        if self.config.symmetric:
            all_queries = gather(queries)
            loss = (loss + nn.functional.cross_entropy(passages @ all_queries.T / self.config.temperature, labels)) / 2
        return loss
