"""X-X batches: every pair of a batch is in one language, drawn per batch (uniformly or by size)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.samplers.base import Batch, BatchSampler, SamplerConfigError
from scaling.samplers.registry import register_strategy

LANGUAGE_SAMPLING = ("uniform", "size")


@dataclass(frozen=True)
class LanguageSampling:
    """How the language of an X-X batch is drawn: uniformly, or p ~ n ** (1 / temperature)."""

    language_sampling: str = "uniform"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.language_sampling not in LANGUAGE_SAMPLING:
            raise SamplerConfigError(f"sampler.language_sampling must be 'uniform' or 'size', "
                                     f"not {self.language_sampling!r}")
        if isinstance(self.temperature, bool) or not isinstance(self.temperature, (int, float)) or self.temperature <= 0:
            raise SamplerConfigError(f"sampler.temperature must be a number > 0, not {self.temperature!r}")


def language_probabilities(sizes: dict[str, float], how: str, temperature: float) -> np.ndarray:
    """Uniform, or proportional to data size with a temperature: p ~ n ** (1 / T)."""
    n = np.array(list(sizes.values()), dtype=np.float64)
    p = np.ones_like(n) if how == "uniform" else n ** (1.0 / temperature)
    return p / p.sum()


@dataclass
class MonolingualSampler(BatchSampler):
    kind = "xx"

    def usable_languages(self) -> dict[str, int]:
        """Languages with monolingual pairs, and their group counts."""
        usable = {lang: len(g) for lang, g in self.index.mono_groups.items() if len(g)}
        if not usable:
            raise SamplerConfigError(
                "X-X batches need monolingual (query, passage) pairs, but in this corpus every query equals its "
                "passage (bitext): X-X would train on identities. Use xy or a QA corpus")
        return usable

    def validate(self) -> None:
        usable = self.usable_languages()
        small = [lang for lang, n in usable.items() if n < self.batch_size]
        if small:
            raise SamplerConfigError(f"batch_size {self.batch_size} is larger than the groups available for "
                                     f"{', '.join(f'{lang} ({usable[lang]})' for lang in small)}")

    def setup(self) -> None:
        usable = self.usable_languages()
        self._langs = list(usable)
        sizes = {lang: self.index.mono_size(lang) for lang in usable}  # weighted in a mix of sources
        self._probs = language_probabilities(sizes, self.params.language_sampling, self.params.temperature)

    def eligible_rows(self) -> int:
        return int(sum(len(g) for g in self.index.mono_groups.values()))

    def draw(self, rng: np.random.Generator, step: int) -> Batch:
        lang = self._langs[int(rng.choice(len(self._langs), p=self._probs))]
        return self.language_batch(rng, step, lang)

    def language_batch(self, rng: np.random.Generator, step: int, lang: str) -> Batch:
        """``batch_size`` distinct groups of ``lang``, each as a (query, passage) pair in ``lang``."""
        groups = self._choose(rng, self.index.mono_groups[lang], f"language {lang}", self.index.mono_weights.get(lang))
        rows = np.array([self.index.rows[(int(g), lang)] for g in groups], dtype=np.int64)
        return Batch(step, self.kind, rows, rows.copy(), (lang,))


register_strategy("xx", LanguageSampling, MonolingualSampler)
