"""The batch-strategy registry: a name, its parameters dataclass and its sampler class.

A new strategy is one module that defines a parameters dataclass (frozen; value checks in
``__post_init__``, so a bad value fails when the configuration is read) and a ``BatchSampler``
subclass, then calls ``register_strategy``. The study YAML, ``jobs/train.py`` and the held-out
loss all find it here; nothing else needs an edit.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable

from scaling.names import closest
from scaling.samplers.errors import SamplerConfigError


@dataclass(frozen=True)
class NoParams:
    """For strategies without parameters of their own."""


@dataclass(frozen=True)
class Strategy:
    name: str
    params: type  # frozen dataclass of the strategy's own parameters
    sampler: type  # a BatchSampler subclass taking ``params=``
    label: Callable[[Any], str] | None = None  # recipe label from the parameters, e.g. "hybrid a=0.5"
    axis_params: tuple[str, ...] = ()  # parameters recorded as result columns in every trial of it (alpha)

    def param_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self.params))

    def make_params(self, raw: dict[str, Any], where: str = "sampler.") -> Any:
        """The parameters from a mapping; an unknown name is an error naming the closest one."""
        known = self.param_names()
        for key in raw:
            if key not in known:
                close = closest(key, known)
                raise SamplerConfigError(
                    f"{where}{key} is not a parameter of strategy {self.name!r}"
                    + (f" (did you mean {close!r}?)" if close else "")
                    + f"; it takes {list(known) or 'no parameters'}")
        try:
            return self.params(**raw)
        except TypeError as exc:
            raise SamplerConfigError(f"{where}: {exc}") from None

    def recipe(self, params: Any) -> str:
        return self.label(params) if self.label else self.name


STRATEGIES: dict[str, Strategy] = {}


def register_strategy(name: str, params: type, sampler: type, label: Callable[[Any], str] | None = None,
                      axis_params: tuple[str, ...] = ()) -> Strategy:
    """Make ``name`` usable as ``sampler.strategy`` and on a study's strategy axis."""
    if name in STRATEGIES and STRATEGIES[name].sampler.__qualname__ != sampler.__qualname__:
        raise ValueError(f"batch strategy {name!r} is already registered by {STRATEGIES[name].sampler.__name__}")
    entry = Strategy(name, params, sampler, label, tuple(axis_params))
    STRATEGIES[name] = entry
    return entry


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        close = closest(str(name), STRATEGIES)
        raise SamplerConfigError(f"unknown sampler.strategy {name!r}" + (f" (did you mean {close!r}?)" if close else "")
                                 + f"; choose from {sorted(STRATEGIES)}")
    return STRATEGIES[name]
