"""Batch strategies, one module each (xx, xy, hybrid, multilingual, single), found by name in
``registry``; ``SamplerConfig`` is the typed ``sampler`` section of a training configuration."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

from scaling.data.corpus import ParallelCorpus
from scaling.names import closest
from scaling.samplers import crosslingual, hybrid, monolingual, multilingual, single  # noqa: F401  (registration)
from scaling.samplers.base import Batch, BatchSampler, CorpusIndex
from scaling.samplers.errors import SamplerConfigError
from scaling.samplers.registry import STRATEGIES, NoParams, Strategy, get_strategy, register_strategy


@dataclass(frozen=True)
class SamplerConfig:
    """The strategy, the settings every strategy shares, and the strategy's own ``params``.

    Written flat in YAML (``{strategy: hybrid, batch_size: 32, alpha: 0.5}``); ``params`` holds
    the strategy's parameters dataclass (its defaults when omitted).
    """

    strategy: str = "hybrid"
    batch_size: int = 32  # global: all workers together
    seed: int = 0
    steps_per_epoch: int | None = None
    params: Any = None

    def __post_init__(self) -> None:
        for name, value in (("batch_size", self.batch_size), ("seed", self.seed), ("steps_per_epoch", self.steps_per_epoch)):
            if name == "steps_per_epoch" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or (name != "seed" and value < 1):
                raise SamplerConfigError(f"sampler.{name} should be {'an integer' if name == 'seed' else 'an integer >= 1'}, "
                                         f"got {value!r}")
        spec = get_strategy(self.strategy)
        if self.params is None:
            object.__setattr__(self, "params", spec.params())
        elif not isinstance(self.params, spec.params):
            raise SamplerConfigError(f"sampler.params of strategy {self.strategy!r} must be {spec.params.__name__}, "
                                     f"not {type(self.params).__name__}")

    @classmethod
    def of(cls, strategy: str = "hybrid", **settings: Any) -> "SamplerConfig":
        """``SamplerConfig.of("hybrid", batch_size=8, alpha=0.3)``: shared settings and params by name."""
        return cls.from_dict({"strategy": strategy, **settings})

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "sampler.") -> "SamplerConfig":
        raw = dict(raw)
        spec = get_strategy(raw.pop("strategy", cls.strategy))
        common = {f.name for f in fields(cls)} - {"strategy", "params"}
        shared = {k: raw.pop(k) for k in list(raw) if k in common}
        for key in [k for k in raw if k not in spec.param_names()]:
            close = closest(key, sorted(common) + list(spec.param_names()))
            raise SamplerConfigError(
                f"unknown setting '{where}{key}': not a sampler setting nor a parameter of strategy {spec.name!r}"
                + (f" (did you mean {where}{close}?)" if close else "")
                + f"; shared settings are {sorted(common)}, {spec.name!r} takes {list(spec.param_names()) or 'no parameters'}")
        return cls(spec.name, params=spec.make_params(raw, where), **shared)

    def to_dict(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "batch_size": self.batch_size, "seed": self.seed,
                "steps_per_epoch": self.steps_per_epoch, **asdict(self.params)}

    @property
    def recipe(self) -> str:
        """The strategy with its parameters as results name it, e.g. ``hybrid a=0.5``."""
        return get_strategy(self.strategy).recipe(self.params)


def make_sampler(config: SamplerConfig, corpus: ParallelCorpus | CorpusIndex, languages: Sequence[str] | None = None,
                 source_weights: Mapping[str, float] | None = None) -> BatchSampler:
    """Build and validate a sampler; every error names the setting and happens before training.
    ``source_weights``: a mix's weights by row ``source`` (``scaling.data.mixing``)."""
    index = corpus if isinstance(corpus, CorpusIndex) else CorpusIndex(corpus, languages, source_weights)
    cls = get_strategy(config.strategy).sampler
    return cls(index=index, batch_size=config.batch_size, seed=config.seed, steps_per_epoch=config.steps_per_epoch,
               params=config.params)


__all__ = ["Batch", "BatchSampler", "CorpusIndex", "NoParams", "SamplerConfig", "SamplerConfigError", "STRATEGIES",
           "Strategy", "get_strategy", "make_sampler", "register_strategy"]
