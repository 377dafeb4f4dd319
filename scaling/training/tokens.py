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

    def batch(self, rows: np.ndarray, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        source = self.queries if which == "query" else self.passages
        return pad_batch([source[int(r)] for r in rows], self.pad_id)


def tokenize_corpus(encoder: DualEncoder, corpus: ParallelCorpus) -> TokenizedCorpus:
    tok, cfg = encoder.tokenizer, encoder.config
    q = tok([cfg.query_prefix + t for t in corpus.table.column("query").to_pylist()], truncation=True,
            max_length=cfg.max_length)["input_ids"]
    p = tok([cfg.passage_prefix + t for t in corpus.table.column("passage").to_pylist()], truncation=True,
            max_length=cfg.max_length)["input_ids"]
    return TokenizedCorpus(q, p, encoder.pad_id)
