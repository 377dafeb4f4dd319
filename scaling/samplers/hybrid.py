"""Hybrid batches (the method under study): each batch is X-X with probability alpha, else X-Y."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError
from scaling.samplers.crosslingual import CrossLingualSampler
from scaling.samplers.monolingual import MonolingualSampler


@dataclass
class HybridSampler(BatchSampler):
    alpha: float = 0.5
    language_sampling: str = "uniform"
    temperature: float = 1.0
    kind = "hybrid"

    def validate(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise SamplerConfigError(f"sampler.alpha must be in [0, 1], not {self.alpha}")
        common = dict(index=self.index, batch_size=self.batch_size, seed=self.seed, steps_per_epoch=1)
        self._xx = MonolingualSampler(**common, language_sampling=self.language_sampling,
                                      temperature=self.temperature) if self.alpha > 0 else None
        self._xy = CrossLingualSampler(**common) if self.alpha < 1 else None

    def eligible_rows(self) -> int:
        return max(s.eligible_rows() for s in (self._xx, self._xy) if s is not None)

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        part = self._xx if rng.random() < self.alpha else self._xy
        return part.draw(rng, step)
