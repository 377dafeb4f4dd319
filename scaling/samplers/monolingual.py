"""X-X batches: every pair of a batch is in one language, drawn per batch; and the fixed-language
("single", e.g. English-only, the zero-shot transfer baseline) special case."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.languages import canonical
from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError


def language_probabilities(sizes: dict[str, int], how: str, temperature: float) -> np.ndarray:
    """Uniform, or proportional to data size with a temperature: p ~ n ** (1 / T)."""
    n = np.array(list(sizes.values()), dtype=np.float64)
    if how == "uniform":
        p = np.ones_like(n)
    elif how == "size":
        if temperature <= 0:
            raise SamplerConfigError(f"sampler.temperature must be > 0, not {temperature}")
        p = n ** (1.0 / temperature)
    else:
        raise SamplerConfigError(f"sampler.language_sampling must be 'uniform' or 'size', not {how!r}")
    return p / p.sum()


@dataclass
class MonolingualSampler(BatchSampler):
    language_sampling: str = "uniform"
    temperature: float = 1.0
    kind = "xx"

    def validate(self) -> None:
        usable = {lang: len(g) for lang, g in self.index.mono_groups.items() if len(g)}
        if not usable:
            raise SamplerConfigError(
                "X-X batches need monolingual (query, passage) pairs, but in this corpus every query equals its "
                "passage (bitext): X-X would train on identities. Use xy or a QA corpus")
        small = [lang for lang, n in usable.items() if n < self.batch_size]
        if small:
            raise SamplerConfigError(f"batch_size {self.batch_size} is larger than the groups available for "
                                     f"{', '.join(f'{l} ({usable[l]})' for l in small)}")
        self._langs = list(usable)
        self._probs = language_probabilities(usable, self.language_sampling, self.temperature)

    def eligible_rows(self) -> int:
        return int(sum(len(g) for g in self.index.mono_groups.values()))

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        lang = self._langs[int(rng.choice(len(self._langs), p=self._probs))]
        return self._batch(rng, step, lang, self.kind)

    def _batch(self, rng: np.random.Generator, step: int, lang: str, kind: str) -> Batch:
        groups = self._choose(rng, self.index.mono_groups[lang], f"language {lang}")
        rows = np.array([self.index.rows[(int(g), lang)] for g in groups], dtype=np.int64)
        return Batch(step, kind, rows, rows.copy(), (lang,))


@dataclass
class SingleLanguageSampler(MonolingualSampler):
    language: str = "en"
    kind = "single"

    def validate(self) -> None:
        self.language = canonical(self.language)
        if self.language not in self.index.languages:
            raise SamplerConfigError(f"sampler.language {self.language!r} is not among the training languages "
                                     f"{list(self.index.languages)}")
        super().validate()

    def eligible_rows(self) -> int:
        return len(self.index.mono_groups[self.language])

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        return self._batch(rng, step, self.language, self.kind)
