"""Hybrid batches (the method under study): each batch is X-X with probability alpha, else X-Y;
``language_sampling`` and ``temperature`` apply to both kinds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError
from scaling.samplers.crosslingual import CrossLingualSampler
from scaling.samplers.monolingual import LanguageSampling, MonolingualSampler
from scaling.samplers.registry import register_strategy


@dataclass(frozen=True)
class HybridParams(LanguageSampling):
    alpha: float = 0.5  # probability of an X-X batch

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not 0.0 <= self.alpha <= 1.0:
            raise SamplerConfigError(f"sampler.alpha must be in [0, 1], not {self.alpha!r}")


@dataclass
class HybridSampler(BatchSampler):
    kind = "hybrid"

    def validate(self) -> None:
        """Builds the two parts (one language sampling for both); each refuses what it cannot draw."""
        p = self.params
        common = dict(index=self.index, batch_size=self.batch_size, seed=self.seed, steps_per_epoch=1,
                      params=LanguageSampling(p.language_sampling, p.temperature))
        self._xx = MonolingualSampler(**common) if p.alpha > 0 else None
        self._xy = CrossLingualSampler(**common) if p.alpha < 1 else None

    def eligible_rows(self) -> int:
        return max(s.eligible_rows() for s in (self._xx, self._xy) if s is not None)

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        part = self._xx if rng.random() < self.params.alpha else self._xy
        return part.draw(rng, step)


register_strategy("hybrid", HybridParams, HybridSampler, label=lambda p: f"hybrid a={p.alpha:g}", axis_params=("alpha",))
