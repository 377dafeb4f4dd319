"""Fixed-language batches ("single", e.g. English-only): the zero-shot transfer baseline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.languages import canonical
from scaling.samplers.base import Batch, SamplerConfigError
from scaling.samplers.monolingual import MonolingualSampler
from scaling.samplers.registry import register_strategy


@dataclass(frozen=True)
class SingleLanguage:
    language: str = "en"


@dataclass
class SingleLanguageSampler(MonolingualSampler):
    kind = "single"

    def validate(self) -> None:
        """Only this language must have enough groups; the others are never drawn."""
        self.language = canonical(self.params.language)
        if self.language not in self.index.languages:
            raise SamplerConfigError(f"sampler.language {self.language!r} is not among the training languages "
                                     f"{list(self.index.languages)}")
        available = len(self.index.mono_groups[self.language])
        if available < self.batch_size:
            raise SamplerConfigError(f"batch_size {self.batch_size} is larger than the groups available for "
                                     f"{self.language} ({available})")

    def setup(self) -> None:
        pass

    def eligible_rows(self) -> int:
        return len(self.index.mono_groups[self.language])

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        return self.language_batch(rng, step, self.language)


register_strategy("single", SingleLanguage, SingleLanguageSampler, label=lambda p: f"single {p.language}")
