"""Token-wise linear layers computed on real tokens only, skipping the padding.

A contrastive batch is padded to its longest text, and on parallel-qa a third of the padded
positions are padding (batches are never regrouped by length: their composition is what a study
varies). The linear layers inside a transformer block act on each position separately and hold
about 70% of the compute on CPU, so they can run on the real tokens alone: gather the real rows,
multiply, scatter them back with zeros at the padding. Attention masks the padded keys and the
pooling ignores padded positions, so every real output is unchanged (to float rounding); only the
work on padding is skipped. Hugging Face offers this only through flash-attention's variable-length
kernels on GPU, hence this small module.

Inside the feed-forward block the expansion linears (``intermediate.dense``, ``mlp.up_proj``...)
keep their output packed as (real tokens, width): the activation between them is elementwise, and
the contraction linear that reads it scatters only its narrower output back to the padded layout.

The layers change class in place (``nn.Linear`` -> ``UnpaddedLinear``), so parameter names, state
dicts and ``save_pretrained`` are untouched, and outside ``DualEncoder.forward`` (or for any input
that is not ``(batch, tokens, features)`` of the current mask's shape) they are plain linears.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
from torch import nn


class RealTokens:
    """The current forward pass's real-token positions, shared by one encoder's linears."""

    def __init__(self) -> None:
        self.shape: tuple[int, int] | None = None
        self.index: torch.Tensor | None = None
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None  # (input, its real rows)

    @contextmanager
    def using(self, attention_mask: torch.Tensor):
        """Within the block, linears see only the positions where ``attention_mask`` is non-zero."""
        index = attention_mask.reshape(-1).nonzero().squeeze(1)  # one pass (and one sync on GPU)
        if index.numel() == attention_mask.numel():  # nothing to skip
            yield
            return
        self.shape, self.index = tuple(attention_mask.shape), index
        try:
            yield
        finally:
            self.shape = self.index = self._last = None

    def rows(self, x: torch.Tensor) -> torch.Tensor:
        """The real rows of ``x`` (batch, tokens, features), gathered once per input tensor
        (query, key and value projections share theirs)."""
        if self._last is not None and self._last[0] is x:
            return self._last[1]
        rows = x.reshape(-1, x.shape[-1]).index_select(0, self.index)
        self._last = (x, rows)
        return rows


# Feed-forward expansion linears by name (BERT/XLM-R/e5, Llama/Mistral/Qwen, OPT/Phi-style): their
# outputs only pass through an elementwise activation (or gate) to the contraction linear.
EXPANSIONS = ("intermediate.dense", "mlp.up_proj", "mlp.gate_proj", "mlp.fc1", "mlp.dense_h_to_4h")


class UnpaddedLinear(nn.Linear):
    """An ``nn.Linear`` that, while its ``RealTokens`` is active, computes real rows only.

    Input: padded (batch, tokens, features), or packed (real tokens, features) from an expansion.
    Output: padded with zeros at the padding, or packed if ``packed_output`` (an expansion)."""

    real_tokens: RealTokens
    packed_output: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.real_tokens
        if tokens.index is None:
            return super().forward(x)
        if x.dim() == 3 and tuple(x.shape[:2]) == tokens.shape:
            y = super().forward(tokens.rows(x))
        elif x.dim() == 2 and x.shape[0] == tokens.index.numel():  # an expansion's packed output
            y = super().forward(x)
        else:
            return super().forward(x)
        if self.packed_output:
            return y
        batch, length = tokens.shape
        out = y.new_zeros(batch * length, y.shape[-1]).index_copy(0, tokens.index, y)
        return out.view(batch, length, y.shape[-1])


def recompute_context(tokens: RealTokens):
    """A ``context_fn`` for ``torch.utils.checkpoint`` (non-reentrant): activation checkpointing
    recomputes a block during backward, after ``DualEncoder.forward`` has left the real-token
    context; the recomputation runs with the real-token index of its own forward pass."""

    def context_fn():
        saved = (tokens.shape, tokens.index)

        @contextmanager
        def recompute():
            before = (tokens.shape, tokens.index, tokens._last)
            tokens.shape, tokens.index, tokens._last = saved[0], saved[1], None
            try:
                yield
            finally:
                tokens.shape, tokens.index, tokens._last = before

        return nullcontext(), recompute()

    return context_fn


def unpad_linears(layers: nn.Module) -> RealTokens:
    """Make every ``nn.Linear`` under ``layers`` (the transformer blocks, not the embeddings or a
    head) skip padded positions; returns the switch that ``DualEncoder.forward`` sets per batch."""
    tokens = RealTokens()
    for name, module in layers.named_modules():
        if type(module) is nn.Linear:
            module.__class__ = UnpaddedLinear
            module.real_tokens = tokens
            module.packed_output = name.endswith(EXPANSIONS)
    return tokens
