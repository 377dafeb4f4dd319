"""The held-out contrastive loss: fixed X-X and X-Y batches (seed 12345) of a held-out corpus,
tokenised once. A smooth quantity for scaling fits, where ranking metrics are step-like."""

from __future__ import annotations

import numpy as np
import torch

from scaling.data import ParallelCorpus
from scaling.models.encoder import DualEncoder
from scaling.records import HELDOUT_KINDS, heldout_column
from scaling.samplers import CorpusIndex, SamplerConfig, make_sampler
from scaling.training.loss import InfoNCELoss, LossConfig
from scaling.training.tokens import tokenize_corpus

HELDOUT_SEED = 12345


class HeldoutSet:
    def __init__(self, encoder: DualEncoder, corpus: ParallelCorpus | None, *, name: str, batch_size: int,
                 steps: int, temperature: float) -> None:
        self.batches: dict[str, list] = {}
        self.notes: dict[str, str | int] = {}
        self.temperature = temperature
        if corpus is None:
            return
        self.tokens = tokenize_corpus(encoder, corpus)
        index = CorpusIndex(corpus)
        smallest_language = min((len(g) for g in index.mono_groups.values() if len(g)), default=0)
        available = {"xx": smallest_language, "xy": len(index.multi_groups)}
        for kind in HELDOUT_KINDS:
            size = min(batch_size, available[kind])
            if size < 2:
                self.notes[f"{heldout_column(kind)}_skipped"] = f"{name} has no {kind} pairs"
                continue
            config = SamplerConfig.of(kind, batch_size=size, seed=HELDOUT_SEED, steps_per_epoch=steps)
            self.batches[kind] = list(make_sampler(config, index))
            self.notes[f"heldout_batch_{kind}"] = size

    @torch.no_grad()
    def losses(self, encoder: DualEncoder, device: torch.device) -> dict[str, float | str]:
        """Mean loss per batch kind, in eval mode (no dropout); the RNG state is left untouched."""
        loss_fn = InfoNCELoss(LossConfig(self.temperature, gather=False))
        out: dict[str, float | str] = dict(self.notes)
        was_training = encoder.training
        encoder.eval()
        for kind, batches in self.batches.items():
            values = []
            for batch in batches:
                q = encoder(*(t.to(device) for t in self.tokens.batch(batch.query_rows, "query")))
                p = encoder(*(t.to(device) for t in self.tokens.batch(batch.passage_rows, "passage")))
                values.append(float(loss_fn(q.float(), p.float())))
            out[heldout_column(kind)] = float(np.mean(values))
        encoder.train(was_training)
        return out

    @staticmethod
    def curve_values(losses: dict) -> dict[str, float]:
        """The losses themselves, without the notes (what a curve point records)."""
        return {heldout_column(k): losses[heldout_column(k)] for k in HELDOUT_KINDS if heldout_column(k) in losses}
