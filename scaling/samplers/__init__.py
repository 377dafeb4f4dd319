"""Batch strategies, chosen by name: xx, xy, hybrid, multilingual, single (one concept per module)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from scaling.data.corpus import ParallelCorpus
from scaling.samplers.base import Batch, BatchSampler, CorpusIndex, SamplerConfigError
from scaling.samplers.crosslingual import CrossLingualSampler, MultilingualSampler
from scaling.samplers.hybrid import HybridSampler
from scaling.samplers.monolingual import MonolingualSampler, SingleLanguageSampler

STRATEGIES = {"xx": MonolingualSampler, "xy": CrossLingualSampler, "hybrid": HybridSampler,
              "multilingual": MultilingualSampler, "single": SingleLanguageSampler}


@dataclass(frozen=True)
class SamplerConfig:
    strategy: str = "hybrid"
    batch_size: int = 32  # global: all workers together
    seed: int = 0
    alpha: float = 0.5  # hybrid only
    language_sampling: str = "uniform"  # xx/hybrid: "uniform" or "size"
    temperature: float = 1.0  # with "size": p ~ n ** (1 / temperature)
    language: str = "en"  # single only
    steps_per_epoch: int | None = None


def make_sampler(config: SamplerConfig, corpus: ParallelCorpus, languages: Sequence[str] | None = None
                 ) -> BatchSampler:
    """Build and validate a sampler; every error names the setting and happens before training."""
    if config.strategy not in STRATEGIES:
        raise SamplerConfigError(f"unknown sampler.strategy {config.strategy!r}; choose from {sorted(STRATEGIES)}")
    index = CorpusIndex(corpus, languages)
    common = dict(index=index, batch_size=config.batch_size, seed=config.seed, steps_per_epoch=config.steps_per_epoch)
    cls = STRATEGIES[config.strategy]
    if cls is HybridSampler:
        return cls(**common, alpha=config.alpha, language_sampling=config.language_sampling,
                   temperature=config.temperature)
    if cls is MonolingualSampler:
        return cls(**common, language_sampling=config.language_sampling, temperature=config.temperature)
    if cls is SingleLanguageSampler:
        return cls(**common, language=config.language)
    return cls(**common)


__all__ = ["Batch", "BatchSampler", "CorpusIndex", "SamplerConfig", "SamplerConfigError", "STRATEGIES", "make_sampler"]
