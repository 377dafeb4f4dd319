"""Rows tokenised once before the loop; each batch is padded only to its own longest sequence."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from scaling.data import ParallelCorpus
from scaling.models.encoder import DualEncoder, pad_batch


@dataclass
class TokenizedCorpus:
    queries: list[list[int]]
    passages: list[list[int]]
    pad_id: int
    left: bool = False  # the tokenizer pads on the left

    def batch(self, rows: np.ndarray, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        source = self.queries if which == "query" else self.passages
        return pad_batch([source[int(r)] for r in rows], self.pad_id, left=self.left)


def tokenize_corpus(encoder: DualEncoder, corpus: ParallelCorpus) -> TokenizedCorpus:
    """Through ``DualEncoder.token_ids``: the instruction, prefixes and EOS exactly as evaluation applies them."""
    q = encoder.token_ids(corpus.table.column("query").to_pylist(), "query")
    p = encoder.token_ids(corpus.table.column("passage").to_pylist(), "passage")
    return TokenizedCorpus(q, p, encoder.pad_id, encoder.left_padding)
